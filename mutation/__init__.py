"""`make mutation`: mutation testing (mutmut) of the critical modules, with the tests that cover
each."""
