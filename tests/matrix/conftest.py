"""Print the matrix's table at the end of the run, from what tests/matrix/test_matrix.py recorded."""
import json
import os

import matrix

RESULTS = os.path.join(matrix.VENVS, "results.json")


def pytest_sessionstart(session):  # pylint: disable=unused-argument
    if os.path.exists(RESULTS):
        os.unlink(RESULTS)  # a table from an earlier run must not pass for this one's


def pytest_terminal_summary(terminalreporter):
    if not os.path.exists(RESULTS):
        return
    with open(RESULTS, encoding="utf-8") as handle:
        record = json.load(handle)
    jobs = record["jobs"]
    write = terminalreporter.write_line
    write("")
    write("compatibility matrix: wall %.0f s, CPU %.0f s; load average at the end %.2f %.2f %.2f (shared machine)"
          % ((record["wall_seconds"], record["cpu_seconds"]) + tuple(record["load"])))
    write("| ansible-core | controller | targets | sanity | unit | smoke |")
    write("|---|---|---|---|---|---|")

    def cell_text(name):
        job = jobs.get(name)
        if job is None:
            return "not run"
        known = " (%d known finding%s)" % (len(job["known"]), "s"[:len(job["known"]) > 1]) if job["known"] else ""
        return "%s%s %.0f s" % ("pass" if job["ok"] else "FAIL", known, job["seconds"])

    for cell in matrix.CELLS:
        write("| %s | %s | %s | %s | %s | %s |" % (cell.core, cell.controller, ", ".join(cell.targets),
                                                   cell_text("sanity " + cell.core), cell_text("units " + cell.core),
                                                   cell_text("smoke " + cell.core)))
    for version, core in matrix.TARGET_UNITS:
        write("target-side unit tests on Python %s (ansible-core %s module_utils): %s"
              % (version, core, cell_text("target-units " + version)))
