"""`python -m services.intake worker` runs one worker of the intake service (faust's command line)."""

from services.intake.app import create_app

create_app().main()
