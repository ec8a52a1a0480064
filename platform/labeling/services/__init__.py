"""Writes for labeling, by concern: `task_creation` (tasks from a project's candidates),
`leases` (the queue: handing out tasks), `answers` (storing answers) and `skip_and_undo`."""
