"""Start the assistant's server (chat UI on http://127.0.0.1:7860): `python app.py`.

Builds the index first when it is missing or stale; `faq serve --help` lists the options.
"""

import sys

from assistant.cli import main

if __name__ == "__main__":
    if main(["build", "--if-needed"]) != 0:
        sys.exit(1)
    sys.exit(main(["serve", *sys.argv[1:]]))
