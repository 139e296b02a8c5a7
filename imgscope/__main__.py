from imgscope.cli import main

raise SystemExit(main())
