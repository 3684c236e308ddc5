from pluginconf.cli import main

raise SystemExit(main())
