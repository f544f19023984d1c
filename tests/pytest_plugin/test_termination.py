"""SIGTERM taken as Ctrl-C in a grid's processes (harness/pytest_plugin/termination.py); the runs
it stops, end to end: tests/pytest_plugin/test_grid_plugin.py."""

import contextlib
import signal
import threading
import types

import pytest

from harness.pytest_plugin.termination import SigtermOnceCellsRun, stop_on_sigterm, terminated


def a_config():
    cleanups = []
    return types.SimpleNamespace(stash=pytest.Stash(), add_cleanup=cleanups.append,
                                 cleanups=cleanups)


@contextlib.contextmanager
def default_sigterm():
    """SIGTERM at its default action, as in a new process; this process's own handler after."""
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def sigterm():
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # never this test's process
    signal.raise_signal(signal.SIGTERM)


def test_the_first_sigterm_interrupts_the_ones_after_it_do_nothing_and_the_end_undoes_it():
    config = a_config()
    with default_sigterm():
        stop_on_sigterm(config)
        assert not terminated(config)
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            sigterm()
        assert terminated(config)
        sigterm()  # the stop under way goes on to write its report
        [undo] = config.cleanups
        undo()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_handler_someone_else_set_is_left_alone_and_only_the_main_thread_sets_one():
    config = a_config()
    with default_sigterm():
        def theirs(signum, frame):
            pass

        signal.signal(signal.SIGTERM, theirs)
        stop_on_sigterm(config)
        assert signal.getsignal(signal.SIGTERM) is theirs and config.cleanups == []
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        thread = threading.Thread(target=stop_on_sigterm, args=(config,))
        thread.start()
        thread.join()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and config.cleanups == []


def test_xdist_s_controller_takes_it_on_once_a_grid_cell_reports():
    config = a_config()
    plugin = SigtermOnceCellsRun(config)
    with default_sigterm():
        plugin.pytest_runtest_logreport(types.SimpleNamespace(keywords={"test_other": 1}))
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # not a grid's test
        plugin.pytest_runtest_logreport(types.SimpleNamespace(keywords={"cell": 1}))
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        plugin.pytest_runtest_logreport(types.SimpleNamespace(keywords={"cell": 1}))
        assert len(config.cleanups) == 1  # once
        config.cleanups[0]()
