"""The page's pure modules (masks, undo, zoom, keys, routes, dashboard numbers, uploads), run
in Chromium exactly as the page loads them: files straight from ``frontend/``, no server."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import FRONTEND, chromium

ORIGIN = "http://frontend.test"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with chromium() as browser:
        page = browser.new_page()

        def serve(route: Any) -> None:
            path = route.request.url.removeprefix(ORIGIN).split("?")[0]
            if path == "/":
                route.fulfill(body="<!doctype html><title>logic</title>", content_type="text/html")
                return
            file = FRONTEND / path.removeprefix("/static/")
            if not file.is_file():
                route.fulfill(status=404, body="missing")
                return
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            route.fulfill(body=file.read_bytes(), content_type=kind)

        page.route(f"{ORIGIN}/**", serve)
        page.goto(f"{ORIGIN}/")
        yield page


def run(page: Any, module: str, body: str) -> Any:
    """Evaluate ``body`` (an expression using ``m``, the module) in the page."""
    return page.evaluate(f"async () => {{ const m = await import('/static/js/{module}'); {body} }}")


def test_fill_holes_fills_enclosed_background_only(page: Any) -> None:
    result = run(
        page,
        "mask.js",
        """
        // 7x7: a ring of 1 around a 1-pixel hole, and a gap at the border stays background.
        const w = 7, h = 7, c = new Uint8Array(w * h);
        for (let y = 1; y <= 5; y++) for (let x = 1; x <= 5; x++) c[y * w + x] = 1;
        c[3 * w + 3] = 0;       // the hole
        c[3 * w + 1] = 0;       // a notch open to the outside through (0,3)
        const filled = m.fillHoles(c, w, h, 1);
        return [filled, c[3 * w + 3], c[3 * w + 1], c[0]];
        """,
    )
    assert result == [1, 1, 0, 0]


def test_brush_paints_a_disc_and_the_eraser_clears_it(page: Any) -> None:
    painted, region, erased = run(
        page,
        "mask.js",
        """
        const w = 40, h = 30, c = new Uint8Array(w * h);
        const region = m.paintStroke(c, w, h, {x: 10, y: 10}, {x: 30, y: 10}, 6, 1);
        const painted = m.countForeground(c);
        m.paintStroke(c, w, h, {x: 10, y: 10}, {x: 30, y: 10}, 8, 0);
        return [painted, region, m.countForeground(c)];
        """,
    )
    # A 6 px brush dragged 20 px: about 20*6 + a disc of 6 (28 px) of area.
    assert 120 <= painted <= 170
    assert region["x"] <= 7 and region["x"] + region["w"] >= 33 and region["h"] == 6
    assert erased == 0


def test_brush_is_clipped_at_the_image_edge(page: Any) -> None:
    count = run(
        page,
        "mask.js",
        """const c = new Uint8Array(100);
        m.paintStroke(c, 10, 10, {x: -5, y: -5}, {x: 0, y: 0}, 6, 2);
        return m.countForeground(c);""",
    )
    assert 0 < count < 16


def test_undo_and_redo_restore_each_step(page: Any) -> None:
    states = run(
        page,
        "history.js",
        """
        const mask = await import('/static/js/mask.js');
        const w = 20, h = 20, c = new Uint8Array(w * h), hist = new m.EditHistory(w, h);
        const stroke = (x, value) => {
          const before = c.slice();
          mask.paintStroke(c, w, h, {x, y: 5}, {x, y: 15}, 4, value);
          hist.commit(before, c);
        };
        stroke(5, 1); const one = mask.countForeground(c);
        stroke(15, 1); const two = mask.countForeground(c);
        const nothing = hist.commit(c.slice(), c);   // an empty step is not recorded
        hist.undo(c); const afterUndo = mask.countForeground(c);
        hist.undo(c); const empty = mask.countForeground(c);
        hist.redo(c); const redone = mask.countForeground(c);
        stroke(10, 1);                               // a new step drops what was undone
        return [one, two, nothing, afterUndo, empty, redone, hist.canRedo];
        """,
    )
    one, two, nothing, after_undo, empty, redone, can_redo = states
    assert two > one > 0 and nothing is None
    assert (after_undo, empty, redone, can_redo) == (one, 0, one, False)


def test_contour_outlines_the_mask_and_fill_colours_it(page: Any) -> None:
    edge, inside, outside, filled, clear = run(
        page,
        "mask.js",
        """
        const w = 10, h = 10, c = new Uint8Array(w * h);
        for (let y = 2; y < 8; y++) for (let x = 2; x < 8; x++) c[y * w + x] = 1;
        const full = m.fullRegion(w, h);
        const contour = m.contourPixels(c, w, h, 1, full), fill = m.fillPixels(c, w, full);
        const alpha = (px, x, y) => px[(y * w + x) * 4 + 3];
        return [alpha(contour, 2, 5), alpha(contour, 5, 5), alpha(contour, 0, 0),
                alpha(fill, 5, 5), alpha(fill, 0, 0)];
        """,
    )
    assert (edge, inside, outside, filled, clear) == (255, 0, 0, 255, 0)


def test_mask_values_survive_the_round_trip_to_rgba(page: Any) -> None:
    same = run(
        page,
        "mask.js",
        """const c = Uint8Array.from([0, 1, 2, 3, 0, 1]);
        return Array.from(m.classesFromRGBA(m.rgbaFromClasses(c), 3, 2));""",
    )
    assert same == [0, 1, 2, 3, 0, 1]


def test_zoom_keeps_the_point_under_the_cursor(page: Any) -> None:
    before, after, fit = run(
        page,
        "viewport.js",
        """
        const view = {scale: 0.5, x: 40, y: 10};
        const zoomed = m.zoomAt(view, 3, 300, 200);
        return [m.toImage(view, 300, 200), m.toImage(zoomed, 300, 200),
                m.fitView(2048, 1024, 1000, 800)];
        """,
    )
    assert after == pytest.approx(before)
    assert fit["scale"] == pytest.approx(1000 / 2048) and fit["x"] == pytest.approx(0)


def test_keys_map_to_actions_by_mode(page: Any) -> None:
    actions = run(
        page,
        "keys.js",
        """
        const k = (key, mods = {}) => ({key, ctrlKey: false, metaKey: false, shiftKey: false,
                                        altKey: false, ...mods});
        return [m.actionFor(k('A'), 'review'), m.actionFor(k('r'), 'review'),
                m.actionFor(k('e'), 'review'), m.actionFor(k('ArrowRight'), 'review'),
                m.actionFor(k('ArrowLeft'), 'review'), m.actionFor(k('o'), 'review'),
                m.actionFor(k('a'), 'edit'), m.actionFor(k('z', {ctrlKey: true}), 'edit'),
                m.actionFor(k('y', {ctrlKey: true}), 'edit'),
                m.actionFor(k('Z', {ctrlKey: true, shiftKey: true}), 'edit'),
                m.actionFor(k('z', {ctrlKey: true}), 'review'), m.actionFor(k('u'), 'review'),
                m.actionFor(k('Z', {ctrlKey: true, shiftKey: true}), 'review'),
                m.isTyping({tagName: 'INPUT', type: 'text'}),
                m.isTyping({tagName: 'INPUT', type: 'range'}, 'a'),
                m.isTyping({tagName: 'INPUT', type: 'range'}, 'ArrowRight'),
                m.actionFor(k('a', {repeat: true}), 'review'),
                m.actionFor(k('ArrowRight', {repeat: true}), 'review'),
                m.actionFor(k('Enter', {repeat: true}), 'edit')];
        """,
    )
    assert actions == [
        "accept",
        "reject",
        "edit",
        "next",
        "previous",
        "toggleOverlay",
        None,
        "undo",
        "redo",
        "redo",
        "undoDecision",
        "undoDecision",
        None,
        True,
        False,  # a letter on a focused slider is still a shortcut
        True,  # its arrow keys move it
        None,  # a held key decides once
        "next",  # but moves on as long as it is held
        None,
    ]


def test_routes(page: Any) -> None:
    routes = run(
        page,
        "router.js",
        """return ['', '#/', '#/login', '#/projects/4', '#/projects/4/review',
                   '#/projects/4/dashboard', '#/projects/x', '#/projects',
                   '#/projects/4/images/17'].map(m.parseHash);""",
    )
    assert [r["view"] for r in routes] == [
        "projects",
        "projects",
        "login",
        "project",
        "review",
        "dashboard",
        "missing",
        "projects",
        "image",
    ]
    assert routes[4]["projectId"] == 4
    assert (routes[-1]["projectId"], routes[-1]["imageId"]) == (4, 17)


def test_dashboard_numbers_from_the_api_answers(page: Any) -> None:
    hist, acceptance, labeled, dice, row, nice, policies = run(
        page,
        "stats.js",
        """
        const statistics = {candidates: 5, accepted: 2, edited: 1, rejected: 1, pending: 0,
          superseded: 1, mean_edit_dice: 0.8, score_bands: {
            '0.9-1.0': {candidates: 3, decided: 3, accepted: 2, acceptance_rate: 0.667},
            '0.3-0.4': {candidates: 1, decided: 1, accepted: 0, acceptance_rate: 0}}};
        const round = {number: 1, status: 'succeeded', counts: {candidates: 4,
          labeled_at_start: 3, mean_score: 0.71}, metrics: {model: {val_dice: 0.42,
          train_images: 3, augment: 'strong_all', augment_choice: {chosen: 'strong_all',
          val_dice: {same: 0.4, strong_all: 0.42}}}}};
        const status = {labeled: 6, labeled_over_rounds: [{round: 1, labeled_at_start: 3}]};
        return [m.histogram(statistics).map(b => b.value),
                m.acceptanceByBand(statistics).map(b => b.value),
                m.labeledOverRounds(status), m.valDiceOverRounds([round, {number: 2,
                  metrics: {}}]), m.roundRow(round, statistics),
                [m.niceMax(0), m.niceMax(7), m.niceMax(0.42), m.niceMax(130)],
                [m.perturbation({}), m.perturbation({augment: 'same'}),
                 m.perturbation({augment: 'same', augment_choice: {val_dice: {same: null}}}),
                 m.perturbation({augment: 'same', augment_choice: {val_dice: {same: 0.5,
                   strong_all: 0.4}}, peers: [{augment: 'strong_all'}]}),
                 m.perturbation({augment: 'same', peers: []}),
                 m.perturbation({augment: 'same', augment_choice: {val_dice: {same: 0.6,
                   strong_all: 0.4}}, peers: [], peer_screen: [{policy: 'strong_all',
                   kept: false}]})]];
        """,
    )
    assert hist == [0, 0, 0, 1, 0, 0, 0, 0, 0, 3]
    assert acceptance[3] == 0 and acceptance[9] == pytest.approx(2 / 3)
    assert acceptance[0] is None
    assert [p["value"] for p in labeled] == [3, 6]
    assert dice == [{"label": "round 1", "value": 0.42}]
    assert row["acceptance"] == pytest.approx(0.5) and row["valDice"] == 0.42
    assert row["superseded"] == 1
    assert nice == [1, 10, 0.5, 200]
    assert row["perturbation"] == "strong_all (chosen of same, strong_all)"
    # older rounds say nothing; one policy, or auto without validation labels, is just named
    assert policies[:3] == [None, "same", "same"]
    # with peer maps the policies whose maps were averaged in are named; none, nothing said
    assert policies[3] == "same (chosen of same, strong_all), maps averaged with strong_all"
    assert policies[4] == "same"
    # a peer the validation labels showed worse is named as left out
    assert (
        policies[5]
        == "same (chosen of same, strong_all), strong_all left out (worse on validation)"
    )


def test_masks_find_their_images_by_file_name(page: Any) -> None:
    matched, progress = run(
        page,
        "uploads.js",
        """
        const images = [{id: 1, original_filename: 'a.jpg'}, {id: 2, original_filename: 'b.jpg'},
                        {id: 3, original_filename: 'b.png'}];
        const files = [{name: 'a.png'}, {name: 'b.png'}, {name: 'c.png'}];
        const {pairs, unmatched} = m.matchMasks(files, images);
        return [[pairs.map(p => [p.file.name, p.image.id]), unmatched.map(u => u.why)],
                [m.overallProgress([100, 300], 0, 50), m.overallProgress([100, 300], 1, 150),
                 m.overallProgress([100, 300], 2, 0)]];
        """,
    )
    assert matched == [
        [["a.png", 1]],
        ["several images have this name", "no image has this name"],
    ]
    assert progress == [0.125, 0.625, 1]


def test_durations_and_statuses_read_as_words(page: Any) -> None:
    words = run(
        page,
        "format.js",
        """return [m.duration(5), m.duration(125), m.duration(3725), m.duration(null),
                   m.percent(0.427), m.imageStatus({label_source: 'human'}),
                   m.imageStatus({label_source: null, pending_review: true}),
                   m.imageStatus({label_source: null, pending_review: false}),
                   m.stem('dir/x.y.png')];""",
    )
    assert words == [
        "5 s",
        "2 min 05 s",
        "1 h 02 min",
        "\N{EN DASH}",
        "43%",
        "human label",
        "pending review",
        "none",
        "x.y",
    ]


def test_round_settings_add_peer_maps_with_auto_unless_the_json_names_a_policy(
    page: Any,
) -> None:
    plain, peer, kept, own, said, bad = run(
        page,
        "round_settings.js",
        """
        const refused = (text) => { try { m.roundSettings(text, true); return null; }
          catch (exc) { return exc.name; } };
        const bad = ['{no', '[1, 2]', 'null', '3'].map(refused);
        return [m.roundSettings('', false),
                m.roundSettings('{"model": {"steps": 30}, "threshold": 0.8}', true),
                m.roundSettings('{"model": {"steps": 30}}', false),
                m.roundSettings('{"model": {"machine_augment": "same"}}', true),
                m.roundSettings('{"peer_maps": true}', false), bad];
        """,
    )
    # unticked turns them off: the server's default under "auto" is on
    assert plain == {"peer_maps": False}
    assert peer == {
        "model": {"machine_augment": "auto", "steps": 30},
        "threshold": 0.8,
        "peer_maps": True,
    }
    assert kept == {"model": {"steps": 30}, "peer_maps": False}
    # a policy the JSON names is kept: the server then says why peer maps need "auto"
    assert own == {"model": {"machine_augment": "same"}, "peer_maps": True}
    # and so is the JSON's own word on peer maps
    assert said == {"peer_maps": True}
    assert bad == ["SyntaxError"] * 4


def test_the_peer_maps_box_starts_ticked_where_the_project_trains_under_auto(
    page: Any,
) -> None:
    ticked = run(
        page,
        "round_settings.js",
        """
        return [undefined, {}, {steps: 30}, {machine_augment: "auto"},
                {machine_augment: "same"}, {machine_augment: "strong_all"}]
          .map((settings) => m.peerMapsByDefault(settings));
        """,
    )
    assert ticked == [True, True, True, True, False, False]


def test_roles_include_the_smaller_ones(page: Any) -> None:
    verdicts = run(
        page,
        "format.js",
        """return [['admin', 'reviewer'], ['reviewer', 'reviewer'], ['annotator', 'reviewer'],
                   ['viewer', 'annotator'], [null, 'viewer'], ['owner', 'viewer']]
                  .map(([role, needed]) => m.hasRole(role, needed));""",
    )
    assert verdicts == [True, True, False, False, False, False]


def test_the_settings_form_sends_only_what_changed(page: Any) -> None:
    unchanged, changed, off, problems, lines = run(
        page,
        "project_form.js",
        """
        const project = {id: 1, description: 'Kvasir', auto_accept_threshold: 0.95,
          class_names: ['polyp', 'tool'],
          knowledge: {polyp: {min_regions: 1, max_regions: 3, min_area: 0.005, max_area: 0.6},
                      tool: {min_regions: 0, max_regions: 1, min_area: 0, max_area: 1}}};
        const fields = m.settingsFields(project);
        const edit = (change) => ({...fields, ...change});
        const withPolyp = (entry) => edit({classes: {...fields.classes,
          polyp: {...fields.classes.polyp, ...entry}}});
        const problem = (f) => { try { m.projectChanges(project, f); return null; }
          catch (exc) { return exc.message; } };
        return [m.projectChanges(project, fields),
                m.projectChanges(project, {...withPolyp({maxRegions: '2', maxArea: '55'}),
                                           description: ' Kvasir-SEG '}),
                m.projectChanges(project, edit({autoAccept: ' '})),
                [problem(withPolyp({minArea: ''})), problem(edit({autoAccept: 'high'}))],
                project.class_names.map((n) => m.knowledgeSummary(n, project.knowledge[n]))];
        """,
    )
    assert unchanged == {}  # 0.6 shown as 60 and read back is no change
    assert changed == {
        "description": "Kvasir-SEG",
        "knowledge": {
            "polyp": {"min_regions": 1, "max_regions": 2, "min_area": 0.005, "max_area": 0.55}
        },
    }
    assert off == {"auto_accept_threshold": None}
    assert problems == [
        'polyp: the smallest area must be a number; got ""',
        'the auto-accept score must be a number from 0 to 1; got "high"',
    ]
    assert lines == [
        "polyp: 1 to 3 regions, each 0.5 to 60% of the image",
        "tool: 0 to 1 regions, each 0 to 100% of the image",
    ]


def test_the_new_project_form_sends_knowledge_for_every_class(page: Any) -> None:
    full, plain, problems = run(
        page,
        "project_form.js",
        """
        const base = {name: ' Polyps ', classes: 'polyp, adenoma ,', description: '',
                      minRegions: '', maxRegions: '', minArea: '', maxArea: ''};
        const problem = (change) => { try { m.projectBody({...base, ...change}); return null; }
          catch (exc) { return exc.message; } };
        return [m.projectBody({...base, minRegions: '1', maxRegions: '3', minArea: '0.5',
                               maxArea: '60'}),
                m.projectBody(base),
                [problem({name: '  '}), problem({classes: ' , '}), problem({maxArea: 'lots'})]];
        """,
    )
    each = {"min_regions": 1, "max_regions": 3, "min_area": 0.005, "max_area": 0.6}
    assert full == {
        "name": "Polyps",
        "description": "",
        "class_names": ["polyp", "adenoma"],
        "knowledge": {"polyp": each, "adenoma": each},
    }
    assert plain["knowledge"] == {} and plain["class_names"] == ["polyp", "adenoma"]
    assert problems == [
        "give the project a name",
        "name at least one class, e.g. polyp",
        'the largest area must be a number; got "lots"',
    ]


def test_undo_takes_back_the_decision_made_last_an_edit_included(page: Any) -> None:
    last = run(
        page,
        "queue.js",
        """
        const q = new m.ReviewQueue(1, {}, () => {}, {width: 100, height: 100});
        q.advance = async () => {};  // no server here: staying put is enough
        const [a, b, c] = [{id: 1, decision: null}, {id: 2, decision: null},
                           {id: 3, decision: null}];
        q.items = [a, b, c];
        q.decide(a, 'accepted', () => Promise.resolve(), () => {});
        b.decision = 'edited';  // what a saved edit does
        q.remember(b);
        const afterEdit = q.lastDecided().id;
        b.decision = null;  // the edit undone: the accept before it is next
        return [afterEdit, q.lastDecided().id];
        """,
    )
    assert last == [2, 1]
