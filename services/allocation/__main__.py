"""`python -m services.allocation worker` runs one worker of the allocation service (faust's command line)."""

from services.allocation.app import create_app

create_app().main()
