from tacore.llm_sim.server import main

raise SystemExit(main())
