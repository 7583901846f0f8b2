// Runs as the transcript's js_on_load: `element` is the transcript, `trigger` sends an event to the server.
const transcript = element.querySelector("#faq-transcript");
const box = () => document.querySelector("#faq-question textarea");
const COPIED = {zh: "已复制", en: "Copied"};
const BLOCKED = {
  zh: "此页面禁止复制（嵌入的 iframe 需要 allow=\"clipboard-write\"）。答案已选中，请按 Ctrl+C。",
  en: "Copying is blocked here (the embedding iframe needs allow=\"clipboard-write\"). The answer is selected: press Ctrl+C.",
};
const VOTED = {
  zh: {"1": "已记录：有帮助 · 再点一次撤销", "-1": "已记录：没有帮助 · 再点一次撤销", "0": "已撤销"},
  en: {"1": "Saved: helpful · click again to undo", "-1": "Saved: not helpful · click again to undo", "0": "Vote withdrawn"},
};
const langOf = (node) => (node.closest("[lang]") || {}).lang === "zh" ? "zh" : "en";
const focusBox = () => { const b = box(); if (b) b.focus({preventScroll: true}); };

window.faqShow = (html) => {
  if (!html) return;
  const holder = document.createElement("div");
  holder.innerHTML = html;
  const turn = holder.firstElementChild;
  if (!turn) return;
  const id = turn.dataset.answer;
  if (id && transcript.querySelector(`[data-answer="${CSS.escape(id)}"]`)) return;
  const empty = transcript.querySelector(".faq-empty");
  if (empty) empty.remove();
  transcript.appendChild(turn);
  const quote = turn.querySelector(".faq-quote") || turn;
  turn.scrollIntoView({block: "start"});
  quote.scrollIntoView({block: "nearest"});
  focusBox();
};
window.faqClear = () => {
  transcript.querySelectorAll(".faq-turn").forEach((t) => t.remove());
  focusBox();
};

async function copy(button) {
  const quote = button.closest(".faq-quote");
  const text = quote.querySelector(button.dataset.copy === "cited" ? ".faq-cited" : ".faq-plain").value;
  const status = quote.querySelector(".faq-status");
  const lang = langOf(quote);
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = COPIED[lang];
    status.dataset.state = "copied";
  } catch (error) {
    const range = document.createRange();
    range.selectNodeContents(quote.querySelector(".faq-answer"));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    status.textContent = BLOCKED[lang];
    status.dataset.state = "blocked";
    status.scrollIntoView({block: "nearest"});
  }
}

function vote(button) {
  const turn = button.closest(".faq-turn");
  const quote = button.closest(".faq-quote");
  const pressed = button.getAttribute("aria-pressed") === "true";
  const value = pressed ? "0" : button.dataset.vote;
  quote.querySelectorAll(".faq-vote").forEach((b) => b.setAttribute("aria-pressed", String(b === button && !pressed)));
  quote.querySelector(".faq-why").hidden = value !== "-1";
  quote.querySelector(".faq-status").textContent = VOTED[langOf(quote)][value];
  trigger("click", {action: "vote", answer: turn.dataset.answer, vote: Number(value)});
}

element.addEventListener("click", (event) => {
  const target = event.target.closest("button, .faq-example");
  if (!target || !element.contains(target)) return;
  if (target.classList.contains("faq-copy")) copy(target);
  else if (target.classList.contains("faq-vote")) vote(target);
  else if (target.classList.contains("faq-widen")) {
    trigger("click", {action: "widen", answer: target.closest(".faq-turn").dataset.answer});
  } else if (target.classList.contains("faq-example")) {
    const b = box();
    b.value = target.textContent;
    b.dispatchEvent(new Event("input", {bubbles: true}));
    setTimeout(() => document.querySelector("#faq-ask").click(), 50);
  }
});
element.addEventListener("submit", (event) => {
  const form = event.target.closest(".faq-why");
  if (!form) return;
  event.preventDefault();
  const comment = form.querySelector("textarea").value;
  const quote = form.closest(".faq-quote");
  trigger("click", {action: "vote", answer: form.closest(".faq-turn").dataset.answer, vote: -1, comment});
  form.hidden = true;
  quote.querySelector(".faq-status").textContent = langOf(quote) === "zh" ? "感谢，已记录。" : "Thanks, noted.";
});
const focusWhenReady = () => (box() ? focusBox() : setTimeout(focusWhenReady, 100));
focusWhenReady();
