"""Keyboard shortcuts for a labelling panel (the quality labeller, the Compare tab's
preference marks): Gradio has no per-section key bindings, so a small script listens on the
document and clicks the panel's button for a key, only while the panel is visible and the
focus is not in a text field."""

from __future__ import annotations

import json


def keyboard_js(flag: str, keys: dict[str, str], panel_id: str, *, result: str = "") -> str:
    """A JavaScript function (for `launch(js=...)` or an event's `js=`) that installs the
    listener once per page (`window[flag]`). `keys`: key -> the elem_id of the button it
    presses; `result`: what the function returns (`[]` when an event runs it)."""
    script = """() => {
  if (window.__FLAG__) return __RESULT__;
  window.__FLAG__ = true;
  const keys = __KEYS__;
  const textTypes = ["", "text", "search", "number", "email", "url", "password", "tel"];
  const typing = (el) => {
    if (!el) return false;
    if (el.isContentEditable) return true;
    if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return !el.readOnly && !el.disabled;
    if (el.tagName === "INPUT") {
      return textTypes.includes((el.getAttribute("type") || "").toLowerCase())
        && !el.readOnly && !el.disabled;
    }
    return false;
  };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const id = keys[(event.key || "").toLowerCase()];
    if (!id || typing(event.target)) return;
    const panel = document.getElementById("__PANEL__");
    if (!panel || panel.getClientRects().length === 0) return;
    const host = document.getElementById(id);
    if (!host) return;
    const button = host.tagName === "BUTTON" ? host : host.querySelector("button");
    if (!button || button.disabled || button.getClientRects().length === 0) return;
    event.preventDefault();
    button.click();
  });
  return __RESULT__;
}"""
    return (
        script.replace("__FLAG__", flag)
        .replace("__KEYS__", json.dumps(keys))
        .replace("__PANEL__", panel_id)
        .replace("__RESULT__", result or "undefined")
    )
