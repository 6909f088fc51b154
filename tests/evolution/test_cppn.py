from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict

import numpy as np
import pytest
import torch

from evofool.evolution import (
    ACTIVATIONS,
    INPUTS,
    CPPNEncoding,
    CPPNGenome,
    Rngs,
    activate,
    cppn_inputs,
    encoding_from_spec,
    hsv_to_rgb,
    quantize,
    render_cppns,
)
from evofool.evolution._cppn_genome import _Fields, _fields
from evofool.evolution._cppn_graphs import edit_graphs
from evofool.evolution._cppn_render import _ACTIVATE_INPLACE, _WHOLE_ROWS, _chunk_size, _plan
from evofool.evolution.cppn_reference import Edits, reference_edit_graph, reference_render

LINEAR = ACTIVATIONS.index("linear")
N_INPUTS = len(INPUTS)


def _reference_activation(a: int, s: torch.Tensor) -> torch.Tensor:
    name = ACTIVATIONS[a]
    if name == "sine":
        return torch.sin(s)
    if name == "sigmoid":
        return 2.0 * (1.0 / (1.0 + torch.exp(-s)) - 0.5)
    if name == "gaussian":
        return torch.exp(-(s**2))
    return torch.clamp(s, -3.0, 3.0) / 3.0


def test_activations_match_their_formulas_and_stay_in_minus_one_to_one():
    s = torch.linspace(-8.0, 8.0, 1001)
    for a, name in enumerate(ACTIVATIONS):
        out = activate(a, s)
        torch.testing.assert_close(out, _reference_activation(a, s), atol=1e-5, rtol=0)
        assert out.min() >= -1.0 and out.max() <= 1.0, name
    assert activate(ACTIVATIONS.index("linear"), torch.tensor(4.5)) == 1.0
    with pytest.raises(ValueError, match="activation"):
        activate(4, s)


def test_inputs_are_x_y_distance_and_bias_on_a_centred_grid():
    height, width = 5, 7
    inputs = cppn_inputs(height, width).view(4, height, width)
    xs = torch.tensor([-1.0 + 2.0 * j / (width - 1) for j in range(width)])
    ys = torch.tensor([-1.0 + 2.0 * i / (height - 1) for i in range(height)])
    torch.testing.assert_close(inputs[0], xs.expand(height, width))
    torch.testing.assert_close(inputs[1], ys.unsqueeze(1).expand(height, width))
    torch.testing.assert_close(inputs[2], torch.sqrt(inputs[0] ** 2 + inputs[1] ** 2))
    assert inputs[2, 2, 3] == 0 and torch.all(inputs[3] == 1)


def _evolved_population(color: str = "gray", n: int = 40, rounds: int = 25, seed: int = 0):
    enc = CPPNEncoding(11, 13, color=color, add_node_rate=0.7, delete_node_rate=0.1)
    rngs = Rngs(seed)
    pop = enc.random(n, rngs)
    history = []
    for r in range(rounds):
        pop = enc.mutate(pop, generation=r, rngs=rngs)
        history.append(pop[r % n])
    return enc, pop + history


def test_initial_genomes_connect_inputs_to_outputs_without_hidden_nodes():
    for color, k in (("gray", 1), ("hsv", 3)):
        enc = CPPNEncoding(color=color)
        for g in enc.random(5, Rngs(0)):
            assert g.n_hidden == 0 and g.n_outputs == k and g.n_edges == 4 * k
            pairs = set(zip(g.sources.tolist(), g.targets.tolist(), strict=True))
            assert pairs == {(i, 4 + c) for i in range(4) for c in range(k)}
            assert np.all(np.abs(g.weights) <= 10)


def test_mutated_genomes_stay_valid_and_acyclic_with_varied_topologies():
    enc, pop = _evolved_population()
    assert all(g.is_acyclic() for g in pop)
    hidden = {g.n_hidden for g in pop}
    assert len(hidden) >= 5 and max(hidden) >= 5
    for g in pop:
        assert np.all(np.abs(g.weights) <= 10)
        out = set(range(4, 4 + g.n_outputs))
        assert not (set(g.sources.tolist()) & out)  # outputs are sinks
        assert min(g.targets.tolist(), default=4) >= 4  # inputs are sources


@pytest.mark.parametrize("color", ["gray", "hsv"])
def test_batched_render_equals_reference_renderer(color):
    enc, pop = _evolved_population(color=color, seed=1 if color == "gray" else 2)
    batched = enc.render_outputs(pop)
    assert batched.shape == (len(pop), enc.n_outputs, 11, 13)
    for i, g in enumerate(pop):
        torch.testing.assert_close(batched[i], reference_render(g, 11, 13), atol=1e-5, rtol=0)


def _layers_by_hand(pop: list[CPPNGenome]) -> tuple[Counter, Counter]:
    """Rows per (layer, activation) and later edges per layer, genome by genome in Python.

    A node gets a row if it has inputs and a path to an output (edges out of nodes without
    inputs do not count); its layer is the deepest such path, over all genomes, plus one, less
    its own longest path to an output.
    """
    distances = []
    for g in pop:
        targets = set(g.targets.tolist())
        feeds = defaultdict(list)
        for s, t in zip(g.sources.tolist(), g.targets.tolist(), strict=True):
            if s in targets:
                feeds[s].append(t)

        @functools.cache
        def distance(v: int, g: CPPNGenome = g, feeds: dict = feeds) -> int:
            reached = [distance(t) + 1 for t in feeds[v] if distance(t) >= 0]
            is_output = N_INPUTS <= v < N_INPUTS + g.n_outputs
            return max(reached, default=0 if is_output else -1)

        distances.append({v: distance(v) for v in targets if distance(v) >= 0})
    deepest = max((d for ds in distances for d in ds.values()), default=-1)
    rows, later = Counter(), Counter()
    for g, ds in zip(pop, distances, strict=True):
        in_degree = Counter(g.targets.tolist())
        for v, d in ds.items():
            rows[deepest - d, int(g.activations[v])] += 1
            later[deepest - d] += in_degree[v] - 1
    return rows, later


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_layout_gives_each_needed_node_a_row_in_a_layer_after_all_its_sources(seed):
    enc, pop = _evolved_population(color="hsv" if seed == 2 else "gray", seed=seed + 20)
    plan = _plan(pop)
    rows, later = _layers_by_hand(pop)
    planned = Counter()
    groups = iter(zip(plan.group_sizes, plan.group_activations, strict=True))
    for layer, n_groups in enumerate(plan.groups_per_layer):
        activations = []
        for _ in range(n_groups):
            size, a = next(groups)
            planned[layer, a] = size
            activations.append(a)
        assert activations == sorted(set(activations))  # a layer's rows sorted by activation
    assert planned == rows
    assert {i: n for i, n in enumerate(plan.later_sizes) if n} == +later
    # Rows read only rows of earlier layers (or the inputs, the zero row), never a later-edge
    # row; later edges add into their own layer's nodes.
    first, node_rows = 5, set(range(5))
    sources = plan.sources.tolist()
    targets = iter(plan.later_targets.tolist())
    for n, n_later in zip(plan.layer_sizes, plan.later_sizes, strict=True):
        assert all(sources[r - 5] in node_rows for r in range(first, first + n + n_later))
        assert all(0 <= next(targets) < n for _ in range(n_later))
        node_rows |= set(range(first, first + n))
        first += n + n_later
    assert first == plan.n_rows
    assert set(plan.output_rows.tolist()) <= node_rows


def test_a_cycle_raises_only_where_an_output_depends_on_it():
    sine = ACTIVATIONS.index("sine")
    # 0 -> 4 (the output) and 0 -> 5 -> 6 -> 5: a cycle that no output depends on is never
    # evaluated, by the renderer as by the reference (which starts from the outputs).
    aside = CPPNGenome([-1] * 4 + [sine] * 3, [0, 0, 5, 6], [4, 5, 6, 5], [1.0] * 4, 1)
    assert not aside.is_acyclic()
    other = CPPNEncoding(3, 3).random(1, Rngs(0))[0]
    rendered = render_cppns([other, aside], 3, 3)
    assert torch.equal(rendered[1], reference_render(aside, 3, 3))
    assert torch.equal(rendered[0], render_cppns([other], 3, 3)[0])
    # 6 -> 4 as well: now the output depends on the cycle.
    feeding = CPPNGenome([-1] * 4 + [sine] * 3, [0, 0, 5, 6, 6], [4, 5, 6, 5, 4], [1.0] * 5, 1)
    with pytest.raises(ValueError, match="cycle that an output depends on"):
        render_cppns([other, feeding], 3, 3)


def test_render_is_deterministic_and_independent_of_batch_and_chunking():
    enc, pop = _evolved_population(seed=3)
    a = enc.render(pop)
    b = enc.render(pop)
    assert torch.equal(a, b)
    small_chunks = render_cppns(pop, 11, 13, max_elements=7)
    # Chunks split the sigmoid's vectorised runs elsewhere: last-bit differences, which
    # weights up to 10 amplify through deep genomes (values are in [-1, 1]).
    torch.testing.assert_close(small_chunks, enc.render_outputs(pop), atol=1e-4, rtol=0)
    alone = torch.cat([enc.render_outputs([g]) for g in pop[::7]])
    torch.testing.assert_close(alone, enc.render_outputs(pop)[::7], atol=1e-5, rtol=0)
    assert a.min() >= 0 and a.max() <= 1 and torch.equal(a * 255, (a * 255).round())


@pytest.mark.parametrize("color", ["gray", "hsv"])
def test_batched_render_equals_reference_renderer_to_the_bit(color):
    # Bit for bit but for Gaussian values below exp(-87), flushed to 0 (subnormals are slow).
    enc, pop = _evolved_population(color=color, seed=1 if color == "gray" else 2)
    batched = enc.render_outputs(pop)
    for i, g in enumerate(pop):
        assert (batched[i] - reference_render(g, 11, 13)).abs().max() <= 1e-30


@pytest.mark.parametrize("name", ["sine", "gaussian", "linear"])
def test_block_activations_give_an_element_the_same_bits_anywhere_in_a_run(name):
    # The renderer applies these to blocks of whole rows at once; a one-genome evaluation
    # applies activate() to one row: the element's place in the run must not matter.
    a = ACTIVATIONS.index(name)
    assert a in _WHOLE_ROWS
    s = torch.randn(6000, generator=torch.Generator().manual_seed(a)) * 5
    block = s.clone()
    _ACTIVATE_INPLACE[a](block)
    for start, length in [(0, 1), (3, 17), (5, 143), (1001, 784), (7, 5000)]:
        run = s[start : start + length]
        expected = activate(a, run)
        if name == "gaussian":  # flushed to 0 at or below exp(-87)
            expected = torch.where(run * run < 87.0, expected, torch.zeros(()))
        assert torch.equal(block[start : start + length], expected), (start, length)


def test_the_list_mutate_returns_renders_from_the_arrays_it_built_the_genomes_from():
    enc, pop = _evolved_population(seed=8)
    children = enc.mutate(pop, generation=0, rngs=Rngs(9))
    assert _fields(children) is children.fields  # the arrays as built, not collected again
    rendered = enc.render_outputs(children)
    assert torch.equal(rendered, enc.render_outputs(list(children)))
    for i, g in enumerate(children):
        assert (rendered[i] - reference_render(g, 11, 13)).abs().max() <= 1e-30
    # Once the list changes, its genomes' arrays are collected again.
    children[0], children[-1] = children[-1], pop[0]
    assert _fields(children) is not children.fields
    changed = enc.render_outputs(children)
    assert torch.equal(changed[0], rendered[-1])
    assert torch.equal(changed[-1], enc.render_outputs([pop[0]])[0])
    assert torch.equal(changed[1:-1], rendered[1:-1])
    children.pop()
    assert torch.equal(enc.render_outputs(children), changed[:-1])


def test_a_genome_renders_the_same_bits_alone_or_in_any_batch():
    enc, pop = _evolved_population(seed=5)
    together = enc.render_outputs(pop)
    for i in range(0, len(pop), 5):
        assert torch.equal(enc.render_outputs([pop[i]])[0], together[i])
    assert torch.equal(enc.render_outputs(pop[::-1]), together.flip(0))


@pytest.mark.parametrize("color", ["gray", "hsv"])
def test_pixel_chunks_of_64_give_the_same_bits_and_pixels(color):
    _, pop = _evolved_population(color=color, seed=6)
    n_rows = _plan(pop).n_rows
    assert _chunk_size(20 * 20, n_rows, 64 * n_rows) == 64  # 6 chunks of 64, then 16 pixels
    whole = CPPNEncoding(20, 20, color=color)
    chunked = CPPNEncoding(20, 20, color=color, max_elements=64 * n_rows)
    outputs = chunked.render_outputs(pop)
    assert torch.equal(outputs, whole.render_outputs(pop))
    pixels = quantize(outputs.abs())
    if color == "hsv":
        pixels = quantize(hsv_to_rgb(pixels))
    assert torch.equal(chunked.render(pop), pixels)
    assert torch.equal(whole.render(pop), pixels)


def test_render_turns_outputs_into_pixels_exactly_even_in_odd_chunks():
    enc, pop = _evolved_population(color="hsv", seed=7)
    expected = quantize(hsv_to_rgb(quantize(enc.render_outputs(pop).abs())))
    assert torch.equal(enc.render(pop), expected)
    odd = CPPNEncoding(11, 13, color="hsv", max_elements=500)
    assert torch.equal(
        odd.render(pop), quantize(hsv_to_rgb(quantize(odd.render_outputs(pop).abs())))
    )


def test_constant_and_unneeded_nodes():
    gaussian, sine = ACTIVATIONS.index("gaussian"), ACTIVATIONS.index("sine")
    # Node 5 has no inputs (a constant exp(0) = 1) and feeds the output; node 6 feeds nothing.
    g = CPPNGenome(
        [-1, -1, -1, -1, LINEAR, gaussian, sine], [5, 3, 0], [4, 4, 6], [1.5, 0.0, 2.0], 1
    )
    v = render_cppns([g], 3, 4)[0, 0]
    assert torch.equal(v, torch.full((3, 4), 0.5))  # clip(1.5 * 1 + 0 * 1, -3, 3) / 3
    assert torch.equal(v, reference_render(g, 3, 4)[0])
    # An output without inputs is a constant too.
    lone = CPPNGenome([-1, -1, -1, -1, gaussian, sine], [0], [5], [1.0], 1)
    assert torch.equal(render_cppns([lone, g], 3, 4)[0, 0], torch.ones(3, 4))


def test_gaussian_values_below_exp_minus_87_are_flushed_to_zero():
    gaussian = ACTIVATIONS.index("gaussian")
    g = CPPNGenome([-1, -1, -1, -1, gaussian], [0], [4], [10.5], 1)  # exp(-(10.5 x)^2)
    v = render_cppns([g], 1, 401)[0, 0, 0]
    ref = reference_render(g, 1, 401)[0, 0]
    assert torch.any((ref > 0) & (ref < torch.finfo(torch.float32).tiny))  # subnormals occur
    floor = float(torch.exp(torch.tensor(-87.0)))
    assert torch.equal(v, torch.where(ref > floor, ref, torch.zeros(())))


def test_linear_cppn_with_weight_on_x_draws_a_horizontal_ramp():
    # v = clip(1.5 x + 1.5, -3, 3) / 3 = (x + 1) / 2: 0 at the left column, 1 at the right.
    g = CPPNGenome([-1, -1, -1, -1, LINEAR], [0, 3], [4, 4], [1.5, 1.5], n_outputs=1)
    enc = CPPNEncoding(5, 9)
    v = enc.render_outputs([g])[0, 0]
    expected = torch.linspace(0.0, 1.0, 9).expand(5, 9)
    torch.testing.assert_close(v, expected)
    img = enc.render([g])[0, 0]
    assert torch.equal(img[0], img[4])  # constant down each column
    steps = torch.diff(img[0] * 255)
    assert torch.all((steps - 255 / 8).abs() <= 1.0)  # linear along the row
    # Weight only on y: the same ramp down the rows.
    gy = CPPNGenome([-1, -1, -1, -1, LINEAR], [1, 3], [4, 4], [1.5, 1.5], n_outputs=1)
    vy = enc.render_outputs([gy])[0, 0]
    torch.testing.assert_close(vy, torch.linspace(0.0, 1.0, 5).unsqueeze(1).expand(5, 9))


def test_hidden_gaussian_on_distance_draws_a_centred_blob():
    gaussian = ACTIVATIONS.index("gaussian")
    g = CPPNGenome([-1, -1, -1, -1, LINEAR, gaussian], [2, 5], [5, 4], [2.0, 3.0], n_outputs=1)
    v = CPPNEncoding(9, 9).render_outputs([g])[0, 0]
    assert v[4, 4] == pytest.approx(1.0)
    assert v[0, 0] == pytest.approx(math.exp(-8.0), abs=1e-6)
    torch.testing.assert_close(v, v.flip(0))
    torch.testing.assert_close(v, v.flip(1))


def test_mutation_operators_follow_their_probabilities():
    enc = CPPNEncoding(
        add_connection_rate=0.0,
        delete_connection_rate=0.0,
        add_node_rate=1.0,
        delete_node_rate=0.0,
        weight_rate=0.0,
        activation_rate=0.0,
    )
    parents = enc.random(10, Rngs(0))
    children = enc.mutate(parents, generation=0, rngs=Rngs(1))
    for p, c in zip(parents, children, strict=True):
        assert c.n_hidden == 1 and c.n_edges == p.n_edges + 1
        # The split edge a -> b of weight w becomes a -> new -> b, both of weight w.
        new = c.n_nodes - 1
        w_in = c.weights[c.targets == new]
        w_out = c.weights[c.sources == new]
        assert w_in.size == 1 and w_out.size == 1 and w_in[0] == w_out[0]
        assert w_in[0] in set(p.weights.tolist())
    frozen = CPPNEncoding(
        add_connection_rate=0.0,
        delete_connection_rate=0.0,
        add_node_rate=0.0,
        delete_node_rate=0.0,
        weight_rate=0.0,
        activation_rate=0.0,
    )
    assert frozen.mutate(parents, generation=0, rngs=Rngs(2)) == parents
    deleter = CPPNEncoding(delete_node_rate=1.0, add_node_rate=0.0, add_connection_rate=0.0)
    fewer = deleter.mutate(children, generation=0, rngs=Rngs(3))
    assert all(c.n_hidden == 0 and c.is_acyclic() for c in fewer)


@pytest.mark.parametrize("color", ["gray", "hsv"])
def test_compiled_graph_edits_equal_the_plain_python_edits(color):
    enc, pop = _evolved_population(color=color, seed=12)
    bare = CPPNGenome([-1] * 4 + [0] * (enc.n_outputs + 1), [], [], [], enc.n_outputs)
    pop = [*pop, bare]  # no edges: only adding an edge or deleting the hidden node applies
    fields = _fields(pop)
    rng = np.random.default_rng(0)
    for _ in range(25):
        happens = rng.random((len(pop), 4)) < rng.random(4)
        picks = rng.random((len(pop), 5))
        picks[rng.random(picks.shape) < 0.1] = np.nextafter(1.0, 0.0)  # the last choice
        new_weights = rng.uniform(-10, 10, len(pop))
        new_activations = rng.integers(0, len(ACTIVATIONS), len(pop))
        children = CPPNGenome._many_unchecked(
            _Fields(
                *edit_graphs(
                    *fields[:4],
                    fields.n_nodes,
                    fields.n_edges,
                    enc.n_outputs,
                    happens,
                    picks,
                    new_weights,
                    new_activations,
                )
            ),
            enc.n_outputs,
        )
        for i, (parent, child) in enumerate(zip(pop, children, strict=True)):
            edits = Edits(*happens[i], *picks[i], new_weights[i], new_activations[i])
            expected = reference_edit_graph(
                parent.activations.tolist(),
                parent.sources.tolist(),
                parent.targets.tolist(),
                parent.weights.tolist(),
                enc.n_outputs,
                edits,
            )
            assert child == CPPNGenome(*expected, enc.n_outputs), (i, edits)
            assert child.is_acyclic()


def test_fixed_output_activation_is_never_mutated():
    enc = CPPNEncoding(output_activation="sigmoid", activation_rate=1.0)
    rngs = Rngs(0)
    pop = enc.random(10, rngs)
    for r in range(10):
        pop = enc.mutate(pop, generation=r, rngs=rngs)
    sig = ACTIVATIONS.index("sigmoid")
    assert all(int(g.activations[4]) == sig for g in pop)


def test_mutation_is_seeded_and_leaves_parents_unchanged():
    enc = CPPNEncoding()
    parents = enc.random(20, Rngs(0))
    snapshot = [CPPNGenome.from_state(g.to_state()) for g in parents]
    a = enc.mutate(parents, generation=0, rngs=Rngs(5))
    b = enc.mutate(parents, generation=0, rngs=Rngs(5))
    c = enc.mutate(parents, generation=0, rngs=Rngs(6))
    assert a == b and a != c and parents == snapshot


def test_genome_state_round_trip_and_validation(tmp_path):
    from evofool.io import load_artifact, save_artifact

    _, pop = _evolved_population(n=5, rounds=10)
    save_artifact([g.to_state() for g in pop], tmp_path / "g.pt")
    back = [CPPNGenome.from_state(s) for s in load_artifact(tmp_path / "g.pt")]
    assert back == pop
    with pytest.raises(ValueError, match="outputs are sinks"):
        CPPNGenome([-1, -1, -1, -1, 0, 0], [4], [5], [1.0], n_outputs=1)
    with pytest.raises(ValueError, match="input"):
        CPPNGenome([-1, -1, -1, -1, 0], [0], [1], [1.0], n_outputs=1)
    cyclic = CPPNGenome([-1, -1, -1, -1, 0, 0, 0], [5, 6, 6], [6, 5, 4], [1.0] * 3, n_outputs=1)
    assert not cyclic.is_acyclic()
    with pytest.raises(ValueError, match="cycle"):
        render_cppns([cyclic], 3, 3)
    with pytest.raises(AttributeError):
        pop[0].weights = None


def test_config_round_trip_and_bad_arguments():
    enc = CPPNEncoding(16, 12, color="hsv", output_activation="linear", weight_range=(-3, 3))
    again = encoding_from_spec(enc.spec())
    assert isinstance(again, CPPNEncoding) and again.spec() == enc.spec()
    assert enc.image_shape == (3, 16, 12)
    for kwargs, name in [
        ({"color": "rgb"}, "color"),
        ({"add_node_rate": 1.5}, "add_node_rate"),
        ({"weight_range": (1, -1)}, "weight_range"),
        ({"output_activation": "relu"}, "output_activation"),
    ]:
        with pytest.raises(ValueError, match=name):
            CPPNEncoding(**kwargs)


def test_take_gives_the_picked_genomes_in_order():
    enc, pop = _evolved_population(n=5, rounds=3)
    taken = enc.take(pop[:3], np.array([2, 2, 0]))
    assert taken == [pop[2], pop[2], pop[0]] and taken[0] is pop[2]
