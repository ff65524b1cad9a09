"""Tsumugi Studio: fine-tune LLMs on one consumer GPU.

The package is the library behind the web UI and the CLI. It imports without gradio;
`studio.ui` is the only place that needs it.
"""

__version__ = "0.1.0"
APP_NAME = "Tsumugi Studio"
