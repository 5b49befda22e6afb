from services.ops.cli import main

raise SystemExit(main())
