"""`python -m services.approval worker` runs one worker of the approval service (faust's command line)."""

from services.approval.app import create_app

create_app().main()
