"""Hand-written source tables for ``assets/build_sample_data.py``.

Everything here was written for this project. Japanese sentences use a tiny markup so that one
sentence can be rendered in three styles (see ``render`` in the build script):

* ``{だ}`` -> です / だ / である, ``{いる}`` -> います / いる, ... (short forms, see ``SHORT``)
* ``{polite|plain}`` -> an explicit pair, e.g. ``{行きました|行った}``
"""
