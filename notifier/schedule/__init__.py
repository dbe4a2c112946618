"""Stage 2, the schedule: immutable values, the pure rules over them, and the planner.

Time rules, a deadline's state, lateness and the plan are functions of the
schedule and instants passed in: nothing here reads a clock.
"""
