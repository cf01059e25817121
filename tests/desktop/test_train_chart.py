"""The live loss chart: drawn on its timer's ticks, never once per batch; light on long runs."""
from desktop.train_chart import MAX_POINTS, TrainingChart


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


def test_a_long_run_keeps_the_chart_light_and_one_spike_does_not_flatten_it(qtbot):
    """A CIFAR-10 run at batch 32 for 20 epochs is 28,000 batches: the chart keeps at most a
    couple of thousand points (each append costs time in those already there), and a single
    absurd loss (1e30) does not set the loss axis for the rest of the run."""
    chart = TrainingChart()
    qtbot.addWidget(chart)
    chart.clear(epochs=20)
    steps = 1400
    for step in range(1, 20 * steps + 1):
        loss = 1e30 if step == 3000 else 2.0 / (1 + step / steps)
        chart.add_batch(step, steps, loss)
        if step % 500 == 0:
            chart.flush()
    chart.flush()
    assert chart.train_loss.count() <= MAX_POINTS + 1
    assert chart.loss_axis.max() < 10  # the curve, not the spike, sets the scale
