"""The CPPN code that walks graphs node by node and edge by edge, compiled with numba.

Two passes over a whole population: :func:`layout_rows` lays out every node that an output
needs, of all genomes, as a row of the value buffer that
:func:`evofool.evolution.render_cppns` evaluates layer by layer, and lists what each row
gathers; :func:`edit_graphs` applies each child's structural mutations to its parent's
graph. In vectorised numpy the first takes one pass per layer of depth and some 130 calls in
all, and in Python the second edits lists, child by child. Inner loops are written
without data-dependent branches where that measured faster: their conditions follow the
graphs, which no branch predictor learns. Compiled on first use and cached on disk.
"""

from __future__ import annotations

import numba
import numpy as np

#: Activation functions in the order of the released code's enum (Sferes ``nn2/af_cppn.hpp``).
ACTIVATIONS = ("sine", "sigmoid", "gaussian", "linear")
#: Network inputs, in node order: column x, row y, distance from the centre d, and a bias of 1.
INPUTS = ("x", "y", "d", "bias")
N_INPUTS = len(INPUTS)
N_ACTIVATIONS = len(ACTIVATIONS)
#: First row of the value buffer holding a computed node (rows 0-3 hold the inputs, row 4 zeros).
FIRST_NODE_ROW = N_INPUTS + 1

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _distances(local_src, local_dst, n_nodes, n_edges, k):
    """Every node's longest path, in edges, to an output (-1: none, or it has no inputs).

    Also whether each edge is the first into its node, in edge-list order. Genome by genome,
    in scratch arrays the size of the largest genome: only edges out of nodes with inputs
    count (inputs and constants need no distance), and every edge into a node that reaches an
    output is relaxed (its source is one step further), round after round until nothing
    changes. A graph acyclic where the outputs depend on it settles in at most one round
    more than its node count; a cycle no output depends on is never visited, as in an
    evaluation from the outputs.

    Raises:
        ValueError: If an output depends on a cycle.
    """
    n_max = n_nodes.max()
    has_inputs = np.empty(n_max, np.bool_)
    dist = np.empty(n_max + 1, np.int32)  # and a slot for edges that do not count
    counted_src = np.empty(max(n_edges.max(), 1), np.int32)
    distance = np.empty(n_nodes.sum(), np.int32)
    is_first = np.empty(local_src.size, np.bool_)
    v0, e0 = 0, 0
    # Branch-free inner loops: their conditions follow the graphs, which no branch predictor
    # learns, and mispredicted branches cost more than the work.
    for g in range(n_nodes.size):
        n, e1 = n_nodes[g], e0 + n_edges[g]
        for v in range(n):
            has_inputs[v] = False
            dist[v] = -1
        for c in range(k):
            dist[N_INPUTS + c] = 0
        for e in range(e0, e1):
            is_first[e] = not has_inputs[local_dst[e]]
            has_inputs[local_dst[e]] = True
        for e in range(e0, e1):
            s = local_src[e]
            counted_src[e - e0] = s if has_inputs[s] else n
        for _ in range(n + 1):
            changed = False
            for e in range(e0, e1):
                d = dist[local_dst[e]]
                step = d + (d >= 0)  # d + 1, or -1 if the target reaches no output
                s = counted_src[e - e0]
                changed |= step > dist[s]
                dist[s] = max(dist[s], step)
            if not changed:
                break
        else:
            raise ValueError("a CPPN graph has a cycle that an output depends on")
        for v in range(n):
            distance[v0 + v] = dist[v] if has_inputs[v] else -1
        v0, e0 = v0 + n, e1
    return distance, is_first


@_jit
def _groups(act, distance):
    """Each row node's group (layer, deepest first, then activation; -1: no row of its own).

    Also the end of each group in the nodes sorted by group, then node (a counting sort).
    """
    deepest = distance.max()
    n_groups = N_ACTIVATIONS * (deepest + 1)
    group_end = np.zeros(n_groups + 1, np.int64)
    group = np.empty(act.size, np.int32)
    for v in range(act.size):
        has_row = distance[v] >= 0
        b = (deepest - distance[v]) * N_ACTIVATIONS + act[v]
        group[v] = b if has_row else -1
        group_end[(b + 1) * has_row] += 1  # slot 0 counts the nodes without a row
    group_end[0] = 0
    for i in range(n_groups):
        group_end[i + 1] += group_end[i]
    return group, group_end


@_jit
def _layer_sizes(group, group_end, local_dst, n_nodes, n_edges, is_first):
    """Node rows and later-edge rows per layer."""
    n_layers = (group_end.size - 1) // N_ACTIVATIONS if group_end[-1] else 0
    layer_sizes = np.zeros(n_layers, np.int64)
    for i in range(N_ACTIVATIONS * n_layers):
        layer_sizes[i // N_ACTIVATIONS] += group_end[i + 1] - group_end[i]
    later_sizes = np.zeros(n_layers + 1, np.int64)  # 0: edges into nodes without a row
    v0, e = 0, 0
    for g in range(n_nodes.size):
        for _ in range(n_edges[g]):
            t = group[v0 + local_dst[e]]
            later_sizes[(t // N_ACTIVATIONS + 1) * ((t >= 0) & (not is_first[e]))] += 1
            e += 1
        v0 += n_nodes[g]
    later_sizes = later_sizes[1:]
    return layer_sizes, later_sizes


@_jit
def _layer_starts(layer_sizes, later_sizes):
    """Each layer's first row, and the number of later-edge rows before it.

    One entry more each: the number of rows and of later-edge rows in all.
    """
    first_row = np.empty(layer_sizes.size + 1, np.int64)
    later_before = np.empty(layer_sizes.size + 1, np.int64)
    first_row[0], later_before[0] = FIRST_NODE_ROW, 0
    for i in range(layer_sizes.size):
        first_row[i + 1] = first_row[i] + layer_sizes[i] + later_sizes[i]
        later_before[i + 1] = later_before[i] + later_sizes[i]
    return first_row, later_before


@_jit
def _node_rows(act, n_nodes, group, group_end, later_before, constant_row):
    """The row of every node: its own, an input row, or the row of its constant."""
    row = np.empty(act.size, np.int64)
    fill = group_end[:-1].copy()
    v = 0
    for g in range(n_nodes.size):
        for local in range(n_nodes[g]):
            # Its own row, an input row, or its constant's (also for a node no output needs,
            # whose row nobody reads); branch-free, as in _distances.
            b = max(group[v], 0)
            # A node's place in group order, shifted past the later-edge rows before its layer.
            own = FIRST_NODE_ROW + later_before[b // N_ACTIVATIONS] + fill[b]
            fill[b] += group[v] >= 0
            other = local if local < N_INPUTS else constant_row[max(act[v], 0)]
            row[v] = own if group[v] >= 0 else other
            v += 1
    return row


@_jit
def _gathered(
    local_src,
    local_dst,
    weight,
    n_nodes,
    n_edges,
    is_first,
    group,
    row,
    layer_sizes,
    first_row,
    later_before,
):
    """What each row gathers (its source row and weight), and each later edge's node."""
    # Per layer: the next free later-edge row, and the shift from a later-edge row to the
    # later edge's index.
    next_later = first_row[:-1] + layer_sizes
    later_shift = next_later - later_before[:-1]
    sources = np.empty(first_row[-1] - FIRST_NODE_ROW, np.int64)
    weights = np.empty((first_row[-1] - FIRST_NODE_ROW, 1), np.float32)
    later_targets = np.empty(later_before[-1], np.int64)
    v0, e = 0, 0
    for g in range(n_nodes.size):
        for _ in range(n_edges[g]):
            t = v0 + local_dst[e]
            if group[t] >= 0:
                if is_first[e]:
                    r = row[t]
                else:
                    i = group[t] // N_ACTIVATIONS
                    r = next_later[i]
                    next_later[i] += 1
                    later_targets[r - later_shift[i]] = row[t] - first_row[i]
                sources[r - FIRST_NODE_ROW] = row[v0 + local_src[e]]
                weights[r - FIRST_NODE_ROW, 0] = weight[e]
            e += 1
        v0 += n_nodes[g]
    return sources, weights, later_targets


@_jit
def _group_runs(group_end, n_layers):
    """Size and activation of every non-empty group, and the number of groups per layer."""
    n_groups = 0
    for i in range(N_ACTIVATIONS * n_layers):
        if group_end[i + 1] > group_end[i]:
            n_groups += 1
    group_sizes = np.empty(n_groups, np.int64)
    group_activations = np.empty(n_groups, np.int64)
    groups_per_layer = np.zeros(n_layers, np.int64)
    j = 0
    for i in range(N_ACTIVATIONS * n_layers):
        if group_end[i + 1] > group_end[i]:
            group_sizes[j] = group_end[i + 1] - group_end[i]
            group_activations[j] = i % N_ACTIVATIONS
            groups_per_layer[i // N_ACTIVATIONS] += 1
            j += 1
    return group_sizes, group_activations, groups_per_layer


@_jit
def _output_rows(row, n_nodes, k):
    """The row of every output, genome by genome."""
    out = np.empty(n_nodes.size * k, np.int64)
    v0 = 0
    for g in range(n_nodes.size):
        for c in range(k):
            out[g * k + c] = row[v0 + N_INPUTS + c]
        v0 += n_nodes[g]
    return out


@_jit
def layout_rows(act, local_src, local_dst, weight, n_nodes, n_edges, k, constant_row):
    """Rows of the value buffer, and what each gathers, for a population of CPPN graphs.

    Args are the genomes' fields concatenated (activations, each genome's own node numbers of
    edge sources and targets, weights), each genome's node and edge count, the number of
    outputs ``k``, and the row holding each activation's value at 0 (the zero or bias row).

    Rows 0-3 are the inputs, shared by every genome, and row 4 zeros; a node without inputs is
    a constant and reads the row ``constant_row`` names. Every other node that an output
    depends on gets a row: layer by layer, a node's layer counted back from the outputs (all in
    the last layer) by its longest path to one, so that every edge points to a later layer;
    within a layer by activation, then in node order. Nodes no output needs get no row. After a
    layer's node rows come one row per later edge into them (every edge but a node's first, in
    edge-list order), which holds that edge's term until it is added into its node.

    Row ``r`` gathers row ``sources[r - 5]`` times ``weights[r - 5]``: a node row the source of
    its first edge, a later-edge row the source of its edge.

    Returns:
        ``(n_rows, layer_sizes, later_sizes, group_sizes, group_activations,
        groups_per_layer, sources, weights, later_targets, output_rows)``: per layer its node
        and later-edge rows; per run of one activation within a layer (a group) its size and
        activation, and the number of groups per layer; ``later_targets`` the node of each
        later edge, as a row offset from its layer's first row; ``output_rows`` the row of
        every output, genome by genome.

    Raises:
        ValueError: If an output depends on a cycle.
    """
    distance, is_first = _distances(local_src, local_dst, n_nodes, n_edges, k)
    group, group_end = _groups(act, distance)
    layer_sizes, later_sizes = _layer_sizes(group, group_end, local_dst, n_nodes, n_edges, is_first)
    first_row, later_before = _layer_starts(layer_sizes, later_sizes)
    row = _node_rows(act, n_nodes, group, group_end, later_before, constant_row)
    sources, weights, later_targets = _gathered(
        local_src,
        local_dst,
        weight,
        n_nodes,
        n_edges,
        is_first,
        group,
        row,
        layer_sizes,
        first_row,
        later_before,
    )
    group_sizes, group_activations, groups_per_layer = _group_runs(group_end, layer_sizes.size)
    return (
        first_row[-1],
        layer_sizes,
        later_sizes,
        group_sizes,
        group_activations,
        groups_per_layer,
        sources,
        weights,
        later_targets,
        _output_rows(row, n_nodes, k),
    )


@_jit
def _choice(pick, n):
    """The index in ``range(n)`` that a uniform draw ``pick`` in [0, 1) selects."""
    return min(int(pick * n), n - 1)


@_jit
def _mark_ancestors(node, src, tgt, m, banned, stack):
    """Set ``banned`` for ``node`` and every node with a path to it (edges ``0..m-1``)."""
    banned[node] = True
    stack[0] = node
    top = 1
    while top:
        top -= 1
        x = stack[top]
        for e in range(m):
            if tgt[e] == x and not banned[src[e]]:
                banned[src[e]] = True
                stack[top] = src[e]
                top += 1


@_jit
def _remove_edge(src, tgt, weight, e, m):
    """Remove edge ``e`` of the ``m`` in the arrays, keeping the others in order."""
    for j in range(e, m - 1):
        src[j], tgt[j], weight[j] = src[j + 1], tgt[j + 1], weight[j + 1]


@_jit
def edit_graphs(
    act, src, tgt, weight, n_nodes, n_edges, n_outputs, happens, picks, new_weights, new_activations
):
    """Each child's graph: its parent's with the structural mutations of the released code.

    Args are the parents' fields concatenated (activations and weights already mutated,
    each genome's own node numbers), each parent's node and edge count, the number of
    outputs, and per child whether each mutation happens (``happens``: add connection,
    delete connection, add node, delete node) and its uniform draws (``picks``: the added
    edge's source and target, the deleted edge, the split edge, the deleted node), the added
    edge's weight and the added node's activation.

    In order: an edge from a random input or hidden node to a random non-input node that is
    not one of its ancestors (so the graph stays acyclic); deleting a random edge; splitting
    a random edge ``a -> b`` of weight ``w`` into ``a -> new -> b``, both of weight ``w``;
    deleting a random hidden node and its edges (later nodes move down one number).

    Returns:
        ``(activations, sources, targets, weights, n_nodes, n_edges)`` of the children,
        concatenated.
    """
    n = n_nodes.size
    first_hidden = N_INPUTS + n_outputs
    max_nodes, max_edges = n_nodes.max() + 1, n_edges.max() + 2
    a = np.empty(max_nodes, np.int8)
    s = np.empty(max_edges, np.int64)
    t = np.empty(max_edges, np.int64)
    w = np.empty(max_edges, np.float32)
    banned = np.empty(max_nodes, np.bool_)
    stack = np.empty(max_nodes, np.int64)
    out_act = np.empty(act.size + n, np.int8)
    out_src = np.empty(src.size + 2 * n, np.int64)
    out_tgt = np.empty(src.size + 2 * n, np.int64)
    out_weight = np.empty(src.size + 2 * n, np.float32)
    child_nodes = np.empty(n, np.int64)
    child_edges = np.empty(n, np.int64)
    v0, e0, v_out, e_out = 0, 0, 0, 0
    for i in range(n):
        nn, m = n_nodes[i], n_edges[i]
        a[:nn] = act[v0 : v0 + nn]
        s[:m] = src[e0 : e0 + m]
        t[:m] = tgt[e0 : e0 + m]
        w[:m] = weight[e0 : e0 + m]
        if happens[i, 0]:
            source = _choice(picks[i, 0], nn - n_outputs)
            source = source if source < N_INPUTS else source + n_outputs
            banned[:nn] = False
            _mark_ancestors(source, s, t, m, banned, stack)
            n_avail = 0
            for v in range(N_INPUTS, nn):
                n_avail += not banned[v]
            if n_avail:
                k = _choice(picks[i, 1], n_avail)
                for v in range(N_INPUTS, nn):
                    if not banned[v]:
                        if k == 0:
                            s[m], t[m], w[m] = source, v, new_weights[i]
                            m += 1
                            break
                        k -= 1
        if happens[i, 1] and m:
            _remove_edge(s, t, w, _choice(picks[i, 2], m), m)
            m -= 1
        if happens[i, 2] and m:
            e = _choice(picks[i, 3], m)
            split_src, split_tgt, split_weight = s[e], t[e], w[e]
            _remove_edge(s, t, w, e, m)
            a[nn] = new_activations[i]
            s[m - 1], t[m - 1], w[m - 1] = split_src, nn, split_weight
            s[m], t[m], w[m] = nn, split_tgt, split_weight
            nn, m = nn + 1, m + 1
        if happens[i, 3] and nn > first_hidden:
            gone = first_hidden + _choice(picks[i, 4], nn - first_hidden)
            kept = 0
            for e in range(m):
                if s[e] != gone and t[e] != gone:
                    s[kept] = s[e] - (s[e] > gone)
                    t[kept] = t[e] - (t[e] > gone)
                    w[kept] = w[e]
                    kept += 1
            m = kept
            for v in range(gone, nn - 1):
                a[v] = a[v + 1]
            nn -= 1
        out_act[v_out : v_out + nn] = a[:nn]
        out_src[e_out : e_out + m] = s[:m]
        out_tgt[e_out : e_out + m] = t[:m]
        out_weight[e_out : e_out + m] = w[:m]
        child_nodes[i], child_edges[i] = nn, m
        v0, e0, v_out, e_out = v0 + n_nodes[i], e0 + n_edges[i], v_out + nn, e_out + m
    return (
        out_act[:v_out],
        out_src[:e_out],
        out_tgt[:e_out],
        out_weight[:e_out],
        child_nodes,
        child_edges,
    )
