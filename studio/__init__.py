"""Tsumugi Studio: fine-tune LLMs on one consumer GPU.

The package is the library behind the web UI and the CLI. It imports without gradio;
`studio.ui` is the only place that needs it.
"""

import logging

__version__ = "0.1.0"
APP_NAME = "Tsumugi Studio"

# bitsandbytes (imported by peft) warns on every CPU-only import that an optional kernels
# package is absent; it changes nothing the studio does, so keep it out of logs and tests.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
