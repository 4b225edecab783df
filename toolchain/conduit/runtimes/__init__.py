"""Model runtimes: the code that loads and calls models inside every bento.

`flow.Flow` runs a manifest's stages in order; `base.Runtime` is the per-framework contract (one
module per framework, imported only when a stage needs it); `convert` holds every JSON <-> array
conversion; `hooks` loads `file.py:function` pre/post hooks; `pickles` loads `.pkl` artifacts.
"""
