"""GitOps: which deployments a git change touches (`conduit plan`), for CI to apply only those.

    trees.py   the two sides compared: a commit's tree, and the working tree (what git sees)
    deps.py    what one manifest deploys: its name and the files it reads
    plan.py    plan(paths, changed_since) -> [PlanEntry]: create / update / unchanged / delete
    report.py  a plan as text, JSON or a Markdown table (a pull request's job summary)
"""
from __future__ import annotations

from conduit.errors import UsageError

try:
    import git  # noqa: F401  (GitPython: the `gitops` extra)
except ImportError as exc:
    raise UsageError("conduit plan needs GitPython: pip install 'conduit-deploy[gitops]'") from exc
