"""`python -m services.fulfilment worker` runs one worker of the fulfilment service (faust's command line)."""

from services.fulfilment.app import create_app

create_app().main()
