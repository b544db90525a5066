from __future__ import annotations

from tacore.cli import main

raise SystemExit(main())
