"""Grading machinery: the student's kernel never decides a score.

One module per job: `intake` (LMS export -> one notebook per student), `sandbox` (the kernel's jail),
`wire` (plain data in and out of the kernel), `probe` (the kernel-side runtime), `cases` (how hidden
cases are written and compared), `rules` ("without X" rules, judged on the code the graded functions run),
`session` (drive an executed kernel), `gradebook`, `scheme`, `report`, `commands`.
"""
