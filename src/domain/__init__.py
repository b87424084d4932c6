"""Pure values and rules of Agent Stream. Imports the standard library only."""
