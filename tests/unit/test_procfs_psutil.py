"""Device holders are described through psutil: name, command line, user, start, CPU, memory."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time

from grantscope.sources.procfs import describe_process


def test_describe_process_of_a_real_child() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "marker"])
    try:
        time.sleep(0.2)
        info = describe_process(child.pid)
        assert info is not None
        assert info.pid == child.pid
        assert info.cmdline[-1] == "marker" and info.cmdline[1] == "-c"
        assert info.user == pwd.getpwuid(os.getuid()).pw_name
        assert info.started is not None and abs(info.started - time.time()) < 60
        assert info.cpu_s is not None and info.cpu_s >= 0
        assert info.rss is not None and info.rss > 1 << 20
        assert info.to_json()["cmdline"][-1] == "marker"
    finally:
        child.kill()
        child.wait()
    assert describe_process(child.pid) is None  # gone: no details, no exception
