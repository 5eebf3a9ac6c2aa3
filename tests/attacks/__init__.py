"""Attacks on the code location, one test per reproduction of a hostile or careless config
author (issue 10). Each test is written as the attack and must hold."""
