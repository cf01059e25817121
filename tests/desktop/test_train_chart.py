"""The live loss chart: drawn on its timer's ticks, never once per batch."""
from desktop.train_chart import TrainingChart


def test_the_chart_draws_on_its_timer_not_for_every_batch(qtbot):
    chart = TrainingChart()
    qtbot.addWidget(chart)
    chart.start(3)
    assert chart._timer.isActive()
    for step in range(200):
        chart.add_batch(step, 100, 2.0 / (step + 1))
    chart.add_epoch(1, 0.5, 0.8)
    assert chart.redraws == 0 and chart.point_counts() == (0, 0, 0)  # nothing between ticks
    chart._timer.timeout.emit()
    train, val, acc = chart.point_counts()
    assert chart.redraws == 1 and train > 0 and (val, acc) == (1, 1)  # one redraw drew them all
    chart._timer.timeout.emit()
    assert chart.redraws == 1  # nothing new: nothing redrawn
    chart.add_batch(250, 100, 0.01)
    chart.stop()  # the run ended: what is left is drawn once, and the timer stops
    assert chart.redraws == 2 and chart.point_counts()[0] == train + 1
    assert not chart._timer.isActive()
