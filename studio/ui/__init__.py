"""The Gradio UI: one module per tab, each calling library functions. No logic lives here."""
