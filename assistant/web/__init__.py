"""The web server: JSON API, Gradio chat UI and the helpdesk embed view, in one FastAPI app."""
