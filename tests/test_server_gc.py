"""Start-up's objects are frozen out of the garbage collector once the server has warmed up:
CPython's full collections walked them all, a pause of a few hundred ms with the event loop
stopped (docs/performance.md, "Predict"). The pause itself is measured in bench/, not here."""

from __future__ import annotations

import gc


def test_warm_imports_freezes_what_start_up_made():
    from mlagent.server import create_app, warm_imports

    app = create_app()
    gc.unfreeze()
    try:
        warm_imports().join(timeout=120)
        assert gc.get_freeze_count() > 10_000  # the app, its modules and classes
        assert not any(o is app for o in gc.get_objects())  # out of the collector's lists
    finally:
        gc.unfreeze()
