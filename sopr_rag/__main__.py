import sys

from sopr_rag.cli import main

sys.exit(main())
