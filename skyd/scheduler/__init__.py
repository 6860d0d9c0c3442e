"""The job state machine driver: placement, launch, watch, finish, cancel, recover."""
