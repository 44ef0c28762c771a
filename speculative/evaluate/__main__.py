from speculative.evaluate.run import main

raise SystemExit(main())
