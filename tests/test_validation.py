"""Bad input gives boundlab.ValidationError naming the array and the row (issue 2, section 7)."""

import math

import numpy as np
import pytest

from boundlab import TokenMDP, ValidationError, evaluate, families
from boundlab.reference import enumerate_sequences


def tree_arrays(V=2, T=3, P=1, seed=0):
    rng = np.random.default_rng(seed)
    roll = [rng.dirichlet(np.ones(V), size=P * V**t) for t in range(T)]
    theta = [rng.dirichlet(np.ones(V), size=P * V**t) for t in range(T)]
    reward = rng.random(P * V**T)
    return roll, theta, reward


def test_valid_tree_builds():
    roll, theta, reward = tree_arrays()
    assert TokenMDP.tree(roll, theta, reward).T == 3


def test_validation_error_is_a_value_error():
    assert issubclass(ValidationError, ValueError)


@pytest.mark.parametrize("mutate,match", [
    (lambda r, th, R: r.__setitem__(2, r[2][:3]), r"pi_roll\[2\] has shape \(3, 2\)"),
    (lambda r, th, R: r[2].__setitem__((2, 0), np.nan), r"pi_roll\[2\] row 2 contains NaN"),
    (lambda r, th, R: th[0].__setitem__((0, 1), np.inf), r"pi_theta\[0\] row 0 contains NaN or inf"),
    (lambda r, th, R: r[2].__setitem__(3, [1.5, -0.5]), r"pi_roll\[2\] row 3 has a negative entry"),
    (lambda r, th, R: th[1].__setitem__(1, [0.5, 0.5 + 1e-8]), r"pi_theta\[1\] row 1 sums to"),
    (lambda r, th, R: R.__setitem__(2, 1.2), r"reward\[2\] = 1.2 is outside \[0, 1\]"),
    (lambda r, th, R: R.__setitem__(0, np.nan), r"reward\[0\]"),
])
def test_bad_tree_input_names_array_and_row(mutate, match):
    roll, theta, reward = tree_arrays()
    mutate(roll, theta, reward)
    with pytest.raises(ValidationError, match=match):
        TokenMDP.tree(roll, theta, reward)


def test_row_sum_tolerance_is_1e_9():
    roll, theta, reward = tree_arrays()
    theta[1][1] = [0.5, 0.5 + 5e-10]  # inside the tolerance: accepted
    TokenMDP.tree(roll, theta, reward)


def test_theta_positive_where_roll_zero_is_rejected():
    roll, theta, reward = tree_arrays()
    roll[2][2] = [1.0, 0.0]
    theta[2][2] = [0.9, 0.1]
    with pytest.raises(ValidationError, match=r"pi_theta\[2\] row 2 puts mass 0.1 on token 1"):
        TokenMDP.tree(roll, theta, reward)


def test_theta_zero_where_roll_positive_gives_inf_delta_not_a_crash():
    roll, theta, reward = tree_arrays()
    theta[2][2] = [1.0, 0.0]
    r = evaluate(TokenMDP.tree(roll, theta, reward))
    assert r.delta == math.inf and r.dkl_seq == math.inf
    assert all(not math.isnan(v) for v in r.bounds.values())
    assert math.isfinite(r.bounds["unified"]) and r.status("unified") == "holds"
    assert math.isfinite(r.error) and math.isfinite(r.worst_case_error)


def test_wrong_reward_length():
    roll, theta, reward = tree_arrays()
    with pytest.raises(ValidationError, match="reward has only 3 entries"):
        TokenMDP.tree(roll, theta, reward[:3])


def test_mismatched_step_counts():
    roll, theta, reward = tree_arrays()
    with pytest.raises(ValidationError, match="one table per step"):
        TokenMDP.tree(roll, theta[:1], reward)


def test_empty_horizon():
    with pytest.raises(ValidationError, match="horizon T must be at least 1"):
        TokenMDP.tree([], [], [])


def test_bad_prompt_probs():
    roll, theta, reward = tree_arrays(P=2)
    with pytest.raises(ValidationError, match="init sums to"):
        TokenMDP.tree(roll, theta, reward, prompt_probs=[0.5, 0.6])
    with pytest.raises(ValidationError, match=r"init\[1\] = -0.5 is negative"):
        TokenMDP.tree(roll, theta, reward, prompt_probs=[1.5, -0.5])


def test_tree_too_large_suggests_automaton():
    with pytest.raises(ValidationError, match="TokenMDP.markov"):
        families.random_tree(T=40, V=2)
    with pytest.raises(ValidationError, match="smaller automaton"):
        families.random_dense(40, V=2, k=1).to_tree()


def test_markov_next_state_out_of_range():
    roll = np.full((2, 2), 0.5)
    with pytest.raises(ValidationError, match=r"next_states\[0\] points to state 5"):
        TokenMDP.markov([[0, 1], [5, 0]], roll, roll, [0.5, 0.5], [0.0, 1.0], 3)


def test_markov_bad_horizon():
    roll = np.full((2, 2), 0.5)
    for T in (0, -3, 2.5, True):
        with pytest.raises(ValidationError, match="horizon must be an integer"):
            TokenMDP.markov([[0, 1], [1, 0]], roll, roll, [0.5, 0.5], [0.0, 1.0], T)


def test_non_numeric_table():
    with pytest.raises(ValidationError, match=r"pi_roll\[0\] cannot be read"):
        TokenMDP.tree([[["a", "b"]]], [[[0.5, 0.5]]], [0, 1])


def test_reference_refuses_huge_enumeration():
    mdp = families.iid(40, delta=1e-3)
    with pytest.raises(ValidationError, match="max_sequences"):
        enumerate_sequences(mdp)


def test_family_parameter_errors():
    with pytest.raises(ValidationError, match="noise"):
        families.random_dense(5, noise=-1.0)
    with pytest.raises(ValidationError, match="flip_frac"):
        families.moe_flip(5, flip_frac=2.0)
    with pytest.raises(ValidationError, match="unreachable"):
        families.iid(5, delta=50.0, q=0.5)
