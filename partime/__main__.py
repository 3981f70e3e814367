from partime.cli.main import main

raise SystemExit(main())
