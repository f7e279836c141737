"""The epoch bar draws its final state (count and losses) even when training is faster than its refresh interval."""
from course_utils.train import History, Timer, epochs


def test_epoch_bar_draws_the_last_count_and_losses(capsys):
    history, seen = History(), []
    for epoch in epochs(3, desc="fast", history=history):
        seen.append(epoch)
        history.log(loss=1.0 / (epoch + 1))
    err = capsys.readouterr().err
    assert seen == [0, 1, 2]
    assert "fast: 100%" in err and "3/3" in err and "loss=0.3333" in err, err


def test_epoch_bar_closes_when_the_loop_stops_early(capsys):
    gen = epochs(5, desc="early")
    for epoch in gen:
        if epoch == 1:
            break
    gen.close()  # what the interpreter does when the loop is abandoned
    assert "early" in capsys.readouterr().err


def test_history_and_timer():
    history = History()
    history.log(loss=2, kl=1)
    history.log(loss=1)
    assert history.last() == {"loss": 1.0, "kl": 1.0} and history["loss"] == [2.0, 1.0]
    with Timer() as t:
        sum(range(1000))
    assert t.seconds > 0
