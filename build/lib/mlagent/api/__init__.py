"""HTTP surfaces: one router module per surface. Routes parse, authorise, call one
service function and shape the reply; they never touch the database."""
