import sys

from services.clock.app import main

sys.exit(main())
