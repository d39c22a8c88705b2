"""The evolution loop: generations of candidates decided by the run's strategies, each
candidate checked, trained by an executor, stored and accepted in candidate order
(:class:`~runner.evolution.engine.Engine`)."""
