"""Instance strategies shared by the property tests."""

from hypothesis import strategies as st

from boundlab import families

# Divergence regimes: tiny (1e-9..1e-4 nats of logit noise), moderate, near or past the caps.
noise_levels = st.one_of(
    st.floats(1e-9, 1e-4, allow_nan=False),
    st.floats(1e-3, 0.5, allow_nan=False),
    st.floats(1.0, 6.0, allow_nan=False),
)


@st.composite
def tree_instances(draw, max_sequences=1024):
    """Random exact trees: dense noise, sparse flips (including pi_theta = 0 at a flipped
    token), sparse support, several prompts."""
    V = draw(st.integers(2, 4))
    P = draw(st.integers(1, 2))
    T_max = 1
    while P * V ** (T_max + 1) <= max_sequences and T_max < 8:
        T_max += 1
    T = draw(st.integers(1, T_max))
    sparse = draw(st.booleans())
    params = dict(
        T=T, V=V, P=P,
        noise=draw(noise_levels),
        flip_frac=draw(st.sampled_from([0.0, 0.0, 0.05, 0.3, 1.0])) if sparse else 0.0,
        jump=draw(st.sampled_from([2.0, 7.0, 15.0, float("inf")])),
        zero_frac=draw(st.sampled_from([0.0, 0.0, 0.3])),
        logit_scale=draw(st.sampled_from([0.5, 1.5, 4.0])),
        seed=draw(st.integers(0, 2**31 - 1)),
    )
    return params, families.random_tree(**params)
