"""The autoscaler's rule (pure: the clock is passed in)."""
from __future__ import annotations

from conduit.targets.local.autoscaler import Autoscaler, Scaling


def scaler(min_replicas=0, max_replicas=3, cooldown_s=10.0, target=4, initial=1) -> Autoscaler:
    return Autoscaler(Scaling(min_replicas, max_replicas, cooldown_s, target), now=0.0, initial=initial)


def test_a_new_revision_keeps_its_first_replica_for_one_cooldown_then_scales_to_zero():
    autoscaler = scaler()
    assert autoscaler.desired(9.9) == 1
    assert autoscaler.desired(10.0) == 0


def test_min_replicas_stay_warm_when_idle():
    assert scaler(min_replicas=2, initial=2).desired(1000.0) == 2


def test_scale_out_is_immediate_and_capped_by_max_replicas():
    autoscaler = scaler()
    autoscaler.observe(1.0, 9)  # ceil(9 / 4) = 3
    assert autoscaler.desired(1.0) == 3
    autoscaler.observe(2.0, 40)
    assert autoscaler.desired(2.0) == 3


def test_scale_in_waits_for_a_cooldown_at_the_lower_level():
    autoscaler = scaler()
    autoscaler.observe(1.0, 12)  # 3 replicas
    autoscaler.observe(5.0, 4)  # 1 replica's worth from here on
    for now in (6.0, 8.0, 10.9):
        autoscaler.observe(now, 4)
        assert autoscaler.desired(now) == 3
    autoscaler.observe(11.0, 4)
    assert autoscaler.desired(11.0) == 1


def test_any_request_in_flight_keeps_one_replica_and_idle_time_counts_from_the_last():
    autoscaler = scaler()
    autoscaler.observe(30.0, 1)
    assert autoscaler.desired(39.0) == 1
    assert autoscaler.idle_for(39.0) == 9.0
    assert autoscaler.desired(40.0) == 0
