#!/usr/bin/env python3
"""GitLab compatibility: python-gitlab, unchanged, drives mxdesk's API.

usage: gitlab_api.py API_URL ADMIN_TOKEN

API_URL must be the server's `api.public_url` (python-gitlab follows the
`Link` headers the server builds from it). Every area of issue 4's API is
exercised the way a python-gitlab user would against GitLab: projects,
users and tokens, members, labels, milestones, issues and their list filters,
offset and keyset pagination, updates, close/reopen, time tracking, notes
(internal ones too), discussions, quick actions and role rules.

Each area runs even when an earlier one failed (when what it needs exists),
and prints one line: `gitlab_api: <area>: OK (<n> checks)` or
`gitlab_api: <area>: FAIL: <why>`. The last line is `gitlab_api: OK` or
`gitlab_api: FAILED: <areas>`; the exit status is 0, 1 (a check failed) or
2 (python-gitlab is missing). Run by tests/gitlab_api.rs.
"""

import sys
import time
import traceback
import warnings

try:
    import gitlab
    import gitlab.const
    import gitlab.exceptions as gle
except ImportError:
    print(
        "gitlab_api: FAIL: python-gitlab is not installed for this interpreter "
        f"({sys.executable}); run `bash tests/run-all.sh` (it creates target/pyenv "
        "with python-gitlab) or `pip install python-gitlab`",
        file=sys.stderr,
    )
    sys.exit(2)

if not __debug__:
    print("gitlab_api: FAIL: run without -O (the checks are asserts)", file=sys.stderr)
    sys.exit(1)

# A `Link` URL on another base than the client's is a server bug here (the
# test server's public_url is its real address): make python-gitlab's
# warning about it an error.
warnings.filterwarnings("error", message="The base URL in the server response differs")

AL = gitlab.const.AccessLevel


class State:
    """What the areas share (None when the area making it failed)."""

    url = None
    gl = None
    project = None
    alice = bob = carol = None  # reporter, guest, member add/remove
    gl_alice = gl_bob = gl_carol = gl_ro = None
    internal_note_id = None
    v1 = v2 = None  # milestones
    issues = {}  # key -> ProjectIssue as created


S = State()
RESULTS = []  # (area, ok, detail)
CHECKS = [0]


def check(condition, message):
    """An assertion that is counted (for the summary)."""
    CHECKS[0] += 1
    assert condition, message


def expect_error(exc_type, code, fn, *args, **kwargs):
    """`fn(...)` must raise `exc_type` with HTTP status `code`."""
    CHECKS[0] += 1
    try:
        result = fn(*args, **kwargs)
    except exc_type as error:
        assert error.response_code == code, (
            f"{getattr(fn, '__qualname__', fn)}{args}: expected HTTP {code}, "
            f"got {error.response_code}: {error.error_message!r}"
        )
        return error
    raise AssertionError(
        f"{getattr(fn, '__qualname__', fn)}{args} {kwargs}: expected "
        f"{exc_type.__name__} {code}, but it succeeded: {result!r}"
    )


# Keys GitLab's API entities always send (null when empty), per GitLab's
# API documentation; strict clients depend on them.
ISSUE_KEYS = (
    "id", "iid", "project_id", "title", "description", "state", "created_at",
    "updated_at", "closed_at", "closed_by", "labels", "milestone", "assignees",
    "author", "type", "assignee", "user_notes_count", "merge_requests_count",
    "upvotes", "downvotes", "due_date", "confidential", "discussion_locked",
    "issue_type", "web_url", "time_stats", "task_completion_status", "has_tasks",
    "_links", "references", "severity", "moved_to_id", "service_desk_reply_to",
)
USER_KEYS = ("id", "username", "name", "state", "avatar_url", "web_url")
NOTE_KEYS = (
    "id", "type", "body", "attachment", "author", "created_at", "updated_at",
    "system", "noteable_id", "noteable_type", "project_id", "resolvable",
    "confidential", "internal", "noteable_iid",
)
LABEL_KEYS = (
    "id", "name", "color", "text_color", "description", "description_html",
    "open_issues_count", "closed_issues_count", "open_merge_requests_count",
    "subscribed", "priority", "is_project_label",
)
MILESTONE_KEYS = (
    "id", "iid", "project_id", "title", "description", "state", "created_at",
    "updated_at", "due_date", "start_date", "expired", "web_url",
)
MEMBER_KEYS = USER_KEYS + ("access_level", "created_at", "expires_at")
TOKEN_KEYS = ("id", "name", "revoked", "created_at", "scopes", "user_id", "active", "expires_at")
TIME_STATS_KEYS = ("time_estimate", "total_time_spent", "human_time_estimate",
                   "human_total_time_spent")


def check_keys(obj, keys, what):
    """Every key in `keys` is present in `obj` (a RESTObject or a dict)."""
    attrs = obj.attributes if hasattr(obj, "attributes") else obj
    missing = [k for k in keys if k not in attrs]
    check(not missing, f"{what}: keys missing {missing} in {sorted(attrs)}")


def run_area(name, needs, fn):
    """Runs one area; failures are recorded, never fatal to the others."""
    missing = [n for n in needs if getattr(S, n) is None]
    if missing:
        RESULTS.append((name, False, f"skipped: needs {', '.join(missing)} (an earlier area failed)"))
        print(f"gitlab_api: {name}: FAIL: skipped, needs {', '.join(missing)}", flush=True)
        return
    before = CHECKS[0]
    try:
        fn()
    except BaseException as error:  # report every failure and go on
        if isinstance(error, KeyboardInterrupt):
            raise
        detail = f"{type(error).__name__}: {error}"
        if isinstance(error, gle.GitlabError):
            detail += f" (HTTP {error.response_code}, body {error.response_body!r})"
        RESULTS.append((name, False, detail))
        print(f"gitlab_api: {name}: FAIL: {detail}", flush=True)
        traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
        return
    RESULTS.append((name, True, ""))
    print(f"gitlab_api: {name}: OK ({CHECKS[0] - before} checks)", flush=True)


def client(token):
    return gitlab.Gitlab(S.url, private_token=token, timeout=30)


def iids(objects):
    return [o.iid for o in objects]


def iid_set(objects):
    return sorted(o.iid for o in objects)


def issue_iid(key):
    return S.issues[key].iid


# ---------------------------------------------------------------------------
# Areas
# ---------------------------------------------------------------------------


def area_project():
    gl = S.gl
    gl.auth()
    check(gl.user.username == "root", f"admin user {gl.user.username!r}")
    bad = client("not-a-token")
    expect_error(gle.GitlabAuthenticationError, 401, bad.auth)

    project = gl.projects.create({"name": "GitLab API", "path": "gapi"})
    check(project.path == "gapi", f"path {project.path!r}")
    check(project.name == "GitLab API", f"name {project.name!r}")
    check(project.path_with_namespace.endswith("/gapi"), project.path_with_namespace)
    check(project.service_desk_address == "gapi@desk.test", project.service_desk_address)
    by_id = gl.projects.get(project.id)
    check(by_id.path == "gapi", f"by id: {by_id.path!r}")
    by_path = gl.projects.get(project.path_with_namespace)  # sent as desk%2Fgapi
    check(by_path.id == project.id, f"by path: {by_path.id} != {project.id}")
    listed = gl.projects.list(search="gapi", get_all=True)
    check([p.id for p in listed] == [project.id], f"search gapi: {[p.path for p in listed]}")
    expect_error(gle.GitlabGetError, 404, gl.projects.get, 999999)
    expect_error(gle.GitlabGetError, 404, gl.projects.get, "desk/no-such-project")
    S.project = project


def area_users_tokens():
    gl = S.gl
    created = {}
    for username, name in [("alice", "Alice Agent"), ("bob", "Bob Guest"), ("carol", "Carol Temp")]:
        user = gl.users.create(
            {"username": username, "name": name, "email": f"{username}@example.org",
             "password": "unused-by-mxdesk"}
        )
        check(user.username == username and user.name == name, f"created {user}")
        check(user.state == "active", f"state {user.state}")
        check_keys(user, USER_KEYS, "user")
        created[username] = user
    alice = created["alice"]
    check(gl.users.get(alice.id).username == "alice", "get user by id")
    found = gl.users.list(username="alice")
    check([u.id for u in found] == [alice.id], f"users?username=alice: {found}")
    expect_error(gle.GitlabCreateError, 409, gl.users.create,
                 {"username": "alice", "name": "Again", "email": "a2@example.org"})
    expect_error(gle.GitlabGetError, 404, gl.users.get, 999999)

    def make_token(user, name, scopes):
        if hasattr(user, "personal_access_tokens"):
            token = user.personal_access_tokens.create({"name": name, "scopes": scopes})
        else:  # older python-gitlab
            token = gl.personal_access_tokens.create(
                {"user_id": user.id, "name": name, "scopes": scopes})
        check(isinstance(token.token, str) and len(token.token) >= 20, f"token value {token}")
        check(token.scopes == scopes, f"scopes {token.scopes}")
        check(token.user_id == user.id, f"user_id {token.user_id}")
        check(token.active is True and token.revoked is False, f"new token {token}")
        check_keys(token, TOKEN_KEYS + ("token",), "new token")
        return token

    api_token = make_token(alice, "alice-api", ["api"])
    ro_token = make_token(alice, "alice-read", ["read_api"])
    bob_token = make_token(created["bob"], "bob-api", ["api"])
    carol_token = make_token(created["carol"], "carol-api", ["api"])

    gl_alice = client(api_token.token)
    gl_alice.auth()
    check(gl_alice.user.username == "alice", f"second instance is {gl_alice.user.username!r}")
    check(gl_alice.user.id == alice.id, "second instance user id")
    # Non-admins cannot create users.
    expect_error(gle.GitlabCreateError, 403, gl_alice.users.create,
                 {"username": "mallory", "name": "Mallory", "email": "m@example.org"})

    gl_ro = client(ro_token.token)
    gl_ro.auth()
    check(gl_ro.user.username == "alice", "read_api token authenticates")

    listed = gl.personal_access_tokens.list(user_id=alice.id, get_all=True)
    names = sorted(t.name for t in listed)
    check(names == ["alice-api", "alice-read"], f"alice's tokens: {names}")
    check(all(not hasattr(t, "token") for t in listed), "token values are shown only once")
    check_keys(listed[0], TOKEN_KEYS, "listed token")

    temp = make_token(alice, "alice-temp", ["api"])
    gl_temp = client(temp.token)
    gl_temp.auth()
    gl.personal_access_tokens.delete(temp.id)
    expect_error(gle.GitlabAuthenticationError, 401, client(temp.token).auth)
    after = {t.name: t for t in gl.personal_access_tokens.list(user_id=alice.id, get_all=True)}
    check(after["alice-temp"].revoked is True and after["alice-temp"].active is False,
          f"revoked token listed as {after['alice-temp']}")

    S.alice, S.bob, S.carol = alice, created["bob"], created["carol"]
    S.gl_alice, S.gl_ro = gl_alice, gl_ro
    S.gl_bob = client(bob_token.token)
    S.gl_carol = client(carol_token.token)


def area_members():
    project = S.project
    m = project.members.create({"user_id": S.alice.id, "access_level": AL.REPORTER})
    check(m.id == S.alice.id and m.access_level == 20, f"alice member {m}")
    check(m.username == "alice", f"member username {m.username}")
    check_keys(m, MEMBER_KEYS, "member")
    m = project.members.create({"user_id": S.bob.id, "access_level": AL.GUEST})
    check(m.access_level == 10, f"bob member {m}")
    m = project.members.create({"user_id": S.carol.id, "access_level": AL.REPORTER})
    check(m.access_level == 20, f"carol member {m}")

    levels = {m.username: m.access_level for m in project.members.list(get_all=True)}
    check(levels.get("alice") == 20 and levels.get("bob") == 10 and levels.get("carol") == 20,
          f"members {levels}")
    all_levels = {m.username: m.access_level for m in project.members_all.list(get_all=True)}
    check(all_levels.get("bob") == 10, f"members/all {all_levels}")

    member = project.members.get(S.carol.id)
    check(member.access_level == 20, f"get carol {member}")
    member.access_level = AL.DEVELOPER
    member.save()
    check(project.members.get(S.carol.id).access_level == 30, "carol updated to Developer")

    # A Reporter may not manage members; a Guest sees the project.
    alice_project = S.gl_alice.projects.get(project.id, lazy=True)
    expect_error(gle.GitlabCreateError, 403, alice_project.members.create,
                 {"user_id": S.carol.id, "access_level": AL.MAINTAINER})
    check(S.gl_bob.projects.get(project.id).id == project.id, "a guest sees the project")
    check(S.gl_carol.projects.get(project.id).id == project.id, "carol sees the project")

    project.members.delete(S.carol.id)
    expect_error(gle.GitlabGetError, 404, project.members.get, S.carol.id)
    # A former member no longer sees the project: it does not exist for her.
    expect_error(gle.GitlabGetError, 404, S.gl_carol.projects.get, project.id)
    check(S.gl_carol.projects.list(get_all=True) == [], "former member lists no project")
    expect_error(gle.GitlabCreateError, 404, project.members.create,
                 {"user_id": 999999, "access_level": AL.GUEST})


def area_labels():
    project = S.project
    bug = project.labels.create(
        {"name": "bug", "color": "#d9534f", "description": "Something is broken"})
    check(bug.name == "bug" and bug.color.lower() == "#d9534f", f"label {bug}")
    check(bug.description == "Something is broken", f"description {bug.description!r}")
    check(isinstance(bug.id, int), f"label id {bug.id!r}")
    check_keys(bug, LABEL_KEYS, "label")
    for name, color in [("urgent", "#ff0000"), ("question", "#428bca"), ("feature", "#5cb85c")]:
        project.labels.create({"name": name, "color": color})
    names = sorted(l.name for l in project.labels.list(get_all=True))
    check(names == ["bug", "feature", "question", "urgent"], f"labels {names}")
    expect_error(gle.GitlabCreateError, 409, project.labels.create,
                 {"name": "bug", "color": "#000000"})
    got = project.labels.get("bug")
    check(got.id == bug.id, f"label by name {got}")
    got.description = "Broken things"
    got.save()
    check(project.labels.get("bug").description == "Broken things", "label updated")
    # Guests read labels but may not create them.
    bob_project = S.gl_bob.projects.get(project.id, lazy=True)
    check(len(bob_project.labels.list(get_all=True)) == 4, "guest lists labels")
    expect_error(gle.GitlabCreateError, 403, bob_project.labels.create,
                 {"name": "nope", "color": "#000000"})


def area_milestones():
    project = S.project
    v1 = project.milestones.create(
        {"title": "v1.0", "description": "First release", "due_date": "2030-01-31"})
    check(v1.title == "v1.0" and v1.state == "active", f"milestone {v1}")
    check(v1.due_date == "2030-01-31", f"due_date {v1.due_date!r}")
    check(isinstance(v1.iid, int) and v1.web_url, f"iid/web_url {v1}")
    check_keys(v1, MILESTONE_KEYS, "milestone")
    v2 = project.milestones.create({"title": "v2.0"})
    titles = sorted(m.title for m in project.milestones.list(get_all=True))
    check(titles == ["v1.0", "v2.0"], f"milestones {titles}")
    check(project.milestones.get(v1.id).title == "v1.0", "milestone by id")
    v2.state_event = "close"
    v2.save()
    check(project.milestones.get(v2.id).state == "closed", "milestone closed")
    active = [m.title for m in project.milestones.list(state="active", get_all=True)]
    check(active == ["v1.0"], f"active milestones {active}")
    v2.state_event = "activate"
    v2.save()
    check(project.milestones.get(v2.id).state == "active", "milestone reactivated")
    S.v1, S.v2 = v1, v2


def p_list_first(project):
    return project.issues.list(per_page=1, page=1)[0]


def area_issues_create():
    project = S.project
    milestone = {"milestone_id": S.v1.id} if S.v1 is not None else {}
    specs = [
        ("printer", {"title": "Printer on fire",
                     "description": "The printer in room 4 is burning.",
                     "labels": ["bug", "urgent"], "assignee_ids": [S.alice.id], **milestone}),
        ("password", {"title": "Password reset",
                      "description": "I cannot reset my password.", "labels": "question"}),
        ("invoice", {"title": "Invoice amount",
                     "description": "The amount is WRONG on invoice 42.",
                     "labels": ["billing"], "confidential": True}),
        ("vpn", {"title": "VPN slow", "description": "Since Monday."}),
        ("darkmode", {"title": "Feature: dark mode", "labels": ["feature"]}),
        ("jam", {"title": "Printer jam", "description": "Paper jam again.",
                 "labels": ["bug"]}),
        ("old", {"title": "Old question", "description": "Already answered."}),
    ]
    for key, data in specs:
        issue = project.issues.create(data)
        S.issues[key] = issue
        # Distinct created_at/updated_at milliseconds make orders unambiguous.
        time.sleep(0.01)
    check([i.iid for i in S.issues.values()] == list(range(1, 8)),
          f"iids {[i.iid for i in S.issues.values()]}")
    printer = S.issues["printer"]
    check_keys(printer, ISSUE_KEYS, "created issue")
    check_keys(printer.author, USER_KEYS, "issue author")
    check_keys(printer.assignees[0], USER_KEYS, "issue assignee")
    check_keys(printer.attributes["time_stats"], TIME_STATS_KEYS, "issue time_stats")
    check(printer.title == "Printer on fire" and printer.state == "opened", f"{printer}")
    check(sorted(printer.labels) == ["bug", "urgent"], f"labels {printer.labels}")
    check([a["username"] for a in printer.assignees] == ["alice"], f"assignees {printer.assignees}")
    check(printer.assignee["id"] == S.alice.id, f"assignee {printer.assignee}")
    check(printer.author["username"] == "root", f"author {printer.author}")
    if S.v1 is not None:
        check(printer.milestone and printer.milestone["id"] == S.v1.id, f"milestone {printer.milestone}")
        check(printer.milestone["iid"] == S.v1.iid and printer.milestone["web_url"],
              f"milestone iid/web_url {printer.milestone}")
        check_keys(printer.milestone, MILESTONE_KEYS, "issue milestone")
    check(printer.confidential is False, "printer is public")
    check(S.issues["invoice"].confidential is True, "invoice is confidential")
    check(S.issues["password"].labels == ["question"], f"comma labels {S.issues['password'].labels}")
    vpn = S.issues["vpn"]
    for key in ("closed_at", "closed_by", "due_date", "milestone"):
        check(key in vpn.attributes and vpn.attributes[key] is None, f"{key} present and null: {vpn.attributes.get(key, '<absent>')!r}")
    check(vpn.assignees == [] and vpn.labels == [], f"empty lists {vpn.assignees} {vpn.labels}")
    check(vpn.web_url and vpn.references["short"] == "#4", f"web_url/references {vpn.references}")
    got = project.issues.get(printer.iid)
    check(got.title == printer.title and got.id == printer.id, f"get issue {got}")
    check_keys(got, ISSUE_KEYS, "issue")
    check_keys(p_list_first(project), ISSUE_KEYS, "listed issue")
    # Close "old" so the state filters have something closed.
    old = S.issues["old"]
    old.state_event = "close"
    old.save()
    check(old.state == "closed", f"old state {old.state}")
    expect_error(gle.GitlabGetError, 404, project.issues.get, 999)
    expect_error(gle.GitlabCreateError, 400, project.issues.create, {"title": ""})


def area_issue_filters():
    p = S.project
    i = issue_iid
    everything = list(range(1, 8))

    def listed(**filters):
        return iid_set(p.issues.list(get_all=True, **filters))

    check(listed() == everything, f"all: {listed()}")
    check(listed(state="opened") == [1, 2, 3, 4, 5, 6], f"opened: {listed(state='opened')}")
    check(listed(state="closed") == [i("old")], f"closed: {listed(state='closed')}")
    check(listed(state="all") == everything, "state=all")
    check(listed(labels=["bug"]) == [i("printer"), i("jam")], f"labels=bug: {listed(labels=['bug'])}")
    check(listed(labels=["bug", "urgent"]) == [i("printer")], "labels=bug,urgent (all of them)")
    check(listed(labels="BUG") == [i("printer"), i("jam")], "label names are case-insensitive")
    check(listed(labels="None") == [i("vpn"), i("old")], f"labels=None: {listed(labels='None')}")
    check(listed(labels="Any") == [1, 2, 3, 5, 6], f"labels=Any: {listed(labels='Any')}")
    check(listed(labels="no-such-label") == [], "unknown label matches nothing")
    check(listed(assignee_id=S.alice.id) == [i("printer")], "assignee_id")
    check(listed(assignee_id="None") == [2, 3, 4, 5, 6, 7], f"assignee_id=None: {listed(assignee_id='None')}")
    check(listed(assignee_id="Any") == [i("printer")], "assignee_id=Any")
    check(listed(assignee_username="alice") == [i("printer")], "assignee_username")
    check(listed(assignee_username="nobody-here") == [], "unknown assignee_username")
    check(listed(search="printer") == [i("printer"), i("jam")], f"search printer: {listed(search='printer')}")
    check(listed(search="wrong") == [i("invoice")], "search is case-insensitive, in descriptions")
    check(listed(search="PASSWORD") == [i("password")], "search in title, case-insensitive")
    check(listed(confidential=True) == [i("invoice")], f"confidential=true: {listed(confidential=True)}")
    check(listed(confidential=False) == [1, 2, 4, 5, 6, 7], "confidential=false")
    check(listed(iids=[2, 3, 99]) == [2, 3], f"iids[]: {listed(iids=[2, 3, 99])}")
    if S.v1 is not None:
        check(listed(milestone="v1.0") == [i("printer")], f"milestone: {listed(milestone='v1.0')}")
        check(listed(milestone="None") == [2, 3, 4, 5, 6, 7], "milestone=None")
        check(listed(milestone="Any") == [i("printer")], "milestone=Any")

    created = {o.iid: o.created_at for o in p.issues.list(get_all=True)}
    pivot = created[i("darkmode")]
    check(listed(created_after=pivot) == [n for n in everything if created[n] >= pivot],
          f"created_after {pivot}: {listed(created_after=pivot)}")
    check(listed(created_before=created[2]) == [n for n in everything if created[n] <= created[2]],
          f"created_before: {listed(created_before=created[2])}")
    check(listed(created_after="2999-01-01") == [], "created_after in the future")
    check(listed(updated_after="2000-01-01T00:00:00Z") == everything, "updated_after in the past")
    check(listed(updated_before="2000-01-01") == [], "updated_before in the past")
    updated = {o.iid: o.updated_at for o in p.issues.list(get_all=True)}
    upivot = sorted(updated.values())[len(updated) // 2]
    want = sorted(n for n in everything if updated[n] >= upivot)
    check(listed(updated_after=upivot) == want, f"updated_after {upivot}: {listed(updated_after=upivot)} expected {want}")
    want = sorted(n for n in everything if updated[n] <= upivot)
    check(listed(updated_before=upivot) == want, f"updated_before {upivot}: {listed(updated_before=upivot)}")

    desc = iids(p.issues.list(get_all=True))
    check(desc == sorted(everything, reverse=True), f"default order created_at desc: {desc}")
    asc = iids(p.issues.list(get_all=True, order_by="created_at", sort="asc"))
    check(asc == everything, f"created_at asc: {asc}")
    objs = p.issues.list(get_all=True)
    by_updated = [o.iid for o in sorted(objs, key=lambda o: (o.updated_at, o.iid), reverse=True)]
    got = iids(p.issues.list(get_all=True, order_by="updated_at"))
    check(got == by_updated, f"updated_at desc: {got} expected {by_updated}")
    got = iids(p.issues.list(get_all=True, order_by="updated_at", sort="asc"))
    check(got == list(reversed(by_updated)), f"updated_at asc: {got}")
    check(by_updated[0] == i("old"), f"the issue closed last is updated last: {by_updated}")

    # Across projects (/issues) with the same filters.
    across = sorted(o.iid for o in S.gl.issues.list(get_all=True, labels="bug", scope="all"))
    check(across == [i("printer"), i("jam")], f"/issues?labels=bug: {across}")
    expect_error(gle.GitlabListError, 400, p.issues.list, state="bogus", get_all=True)


def area_offset_pagination():
    p = S.project
    page2 = p.issues.list(per_page=2, page=2)
    check(iids(page2) == [5, 4], f"per_page=2 page=2: {iids(page2)}")
    check(iids(p.issues.list(per_page=2, page=4)) == [1], "last page")
    check(p.issues.list(per_page=2, page=9) == [], "a page past the end is empty")
    all_small = p.issues.list(get_all=True, per_page=2)
    check(iids(all_small) == [7, 6, 5, 4, 3, 2, 1], f"get_all per_page=2: {iids(all_small)}")
    lazy = p.issues.list(per_page=2, iterator=True)
    check(lazy.total == 7, f"total {lazy.total}")
    check(lazy.total_pages == 4, f"total_pages {lazy.total_pages}")
    check(lazy.per_page == 2 and lazy.current_page == 1 and lazy.next_page == 2,
          f"per_page/current/next {lazy.per_page}/{lazy.current_page}/{lazy.next_page}")
    check(iids(list(lazy)) == [7, 6, 5, 4, 3, 2, 1], "iterator walks every page")
    last = S.gl.http_request("get", f"/projects/{p.id}/issues", query_data={"per_page": 3, "page": 3})
    check(last.headers.get("X-Prev-Page") == "2" and last.headers.get("X-Next-Page") == "",
          f"prev/next on the last page {dict(last.headers)}")
    check("next" not in last.links and "prev" in last.links, f"Link on the last page {last.links}")
    # Filters survive in the Link URLs.
    opened = p.issues.list(state="opened", per_page=1, get_all=True)
    check(iids(opened) == [6, 5, 4, 3, 2, 1], f"filtered get_all per_page=1: {iids(opened)}")
    raw = S.gl.http_request("get", f"/projects/{p.id}/issues",
                            query_data={"per_page": 2, "page": 2, "state": "opened"})
    h = raw.headers
    check(h.get("X-Total") == "6" and h.get("X-Total-Pages") == "3", f"X-Total {dict(h)}")
    check(h.get("X-Page") == "2" and h.get("X-Per-Page") == "2", f"X-Page {dict(h)}")
    check(h.get("X-Next-Page") == "3" and h.get("X-Prev-Page") == "1", f"X-Next/Prev {dict(h)}")
    links = raw.links
    check(set(links) >= {"next", "prev", "first", "last"}, f"Link rels {links}")
    check(links["next"]["url"].startswith(S.url + "/api/v4/"), f"next URL {links['next']['url']}")
    check("state=opened" in links["next"]["url"], f"filters kept in Link {links['next']['url']}")
    check(raw.headers.get("Content-Type", "").startswith("application/json"), "JSON content type")


def area_keyset_pagination():
    p = S.project
    lazy = p.issues.list(pagination="keyset", per_page=2, order_by="created_at", iterator=True)
    got = iids(list(lazy))
    check(got == [7, 6, 5, 4, 3, 2, 1], f"keyset created_at desc: {got}")
    got = iids(p.issues.list(pagination="keyset", per_page=2, order_by="created_at",
                             sort="asc", iterator=True))
    check(got == [1, 2, 3, 4, 5, 6, 7], f"keyset created_at asc: {got}")
    got = iids(p.issues.list(pagination="keyset", per_page=3, order_by="updated_at",
                             iterator=True))
    expected = iids(p.issues.list(get_all=True, order_by="updated_at"))
    check(got == expected, f"keyset updated_at desc: {got} expected {expected}")
    got = iids(p.issues.list(pagination="keyset", per_page=2, order_by="created_at",
                             labels="bug", get_all=True))
    check(got == [6, 1], f"keyset with a filter, get_all: {got}")

    raw = S.gl.http_request("get", f"/projects/{p.id}/issues",
                            query_data={"pagination": "keyset", "per_page": 3,
                                        "order_by": "created_at", "sort": "asc"})
    check([o["iid"] for o in raw.json()] == [1, 2, 3], f"keyset first page {raw.json()}")
    nxt = raw.links.get("next", {}).get("url", "")
    check("cursor=" in nxt and nxt.startswith(S.url + "/api/v4/"), f"keyset Link next {raw.headers.get('Link')}")
    check("pagination=keyset" in nxt and "sort=asc" in nxt, f"keyset Link keeps the query {nxt}")
    second = S.gl.http_request("get", nxt)
    check([o["iid"] for o in second.json()] == [4, 5, 6], f"keyset second page {second.json()}")
    third = S.gl.http_request("get", second.links["next"]["url"])
    check([o["iid"] for o in third.json()] == [7], f"keyset last page {third.json()}")
    check("next" not in third.links, f"no next after the last page: {third.headers.get('Link')}")
    expect_error(gle.GitlabListError, 400, p.issues.list, pagination="keyset",
                 cursor="not-a-cursor", get_all=False, per_page=2, page=1)


def system_notes(issue):
    return [n.body for n in issue.notes.list(get_all=True, sort="asc") if n.system]


def area_update():
    p = S.project
    issue = p.issues.get(issue_iid("password"))
    issue.labels = ["question", "urgent"]
    issue.assignee_ids = [S.alice.id]
    if S.v1 is not None:
        issue.milestone_id = S.v1.id
    issue.title = "Password reset (urgent)"
    issue.description = "I cannot reset my password; the link expired."
    issue.due_date = "2030-02-01"
    issue.save()
    check(sorted(issue.labels) == ["question", "urgent"], f"labels after save {issue.labels}")
    check([a["id"] for a in issue.assignees] == [S.alice.id], f"assignees {issue.assignees}")
    check(issue.title == "Password reset (urgent)", f"title {issue.title!r}")
    check(issue.due_date == "2030-02-01", f"due_date {issue.due_date!r}")
    fresh = p.issues.get(issue.iid)
    check(sorted(fresh.labels) == ["question", "urgent"], f"stored labels {fresh.labels}")
    if S.v1 is not None:
        check(fresh.milestone["title"] == "v1.0", f"milestone {fresh.milestone}")
    notes = system_notes(fresh)
    joined = " | ".join(notes)
    check(any(n.startswith("added ~") and "urgent" in n and n.endswith("label") for n in notes),
          f"label system note: {joined}")
    check("assigned to @alice" in notes, f"assignee system note: {joined}")
    check("changed title from **Password reset** to **Password reset (urgent)**" in notes,
          f"title note: {joined}")
    check("changed the description" in notes, f"description note: {joined}")
    if S.v1 is not None:
        check(any("milestone" in n and "v1.0" in n for n in notes), f"milestone note: {joined}")

    # Remove labels and the milestone, unassign.
    fresh.labels = ["question"]
    fresh.assignee_ids = []
    if S.v1 is not None:
        fresh.milestone_id = 0
    fresh.save()
    again = p.issues.get(issue.iid)
    check(again.labels == ["question"], f"labels {again.labels}")
    check(again.assignees == [] and again.assignee is None, f"unassigned {again.assignees}")
    check(again.milestone is None, f"milestone removed {again.milestone}")
    check(any("removed" in n and "urgent" in n for n in system_notes(again)), "label removal note")

    # An empty list clears (python-gitlab sends `labels: ""`).
    cleared = p.issues.get(issue_iid("vpn"))
    check(cleared.labels == [], "vpn starts without labels")
    cleared.labels = ["question"]
    cleared.save()
    check(p.issues.get(cleared.iid).labels == ["question"], "label set on vpn")
    cleared.labels = []
    cleared.save()
    check(p.issues.get(cleared.iid).labels == [], f"labels cleared: {p.issues.get(cleared.iid).labels}")

    # Ids as numeric strings are accepted as GitLab accepts them.
    raw = S.gl.http_put(f"/projects/{p.id}/issues/{issue.iid}",
                        post_data={"assignee_ids": [str(S.alice.id)]})
    check([a["id"] for a in raw["assignees"]] == [S.alice.id], f"string ids {raw['assignees']}")

    # Unknown users and milestones are 404, not silently ignored.
    bad = p.issues.get(issue.iid)
    bad.assignee_ids = [999999]
    expect_error(gle.GitlabUpdateError, 404, bad.save)
    bad = p.issues.get(issue.iid)
    bad.milestone_id = 999999
    expect_error(gle.GitlabUpdateError, 404, bad.save)


def area_close_reopen():
    p = S.project
    issue = p.issues.get(issue_iid("vpn"))
    issue.state_event = "close"
    issue.save()
    check(issue.state == "closed", f"state after close {issue.state}")
    fresh = p.issues.get(issue.iid)
    check(fresh.state == "closed" and fresh.closed_at, f"closed_at {fresh.closed_at!r}")
    # `closed_by` is also a method of python-gitlab's ProjectIssue: read the attribute.
    closed_by = fresh.attributes["closed_by"]
    check(closed_by and closed_by["username"] == "root", f"closed_by {closed_by}")
    check(issue.iid in iid_set(p.issues.list(state="closed", get_all=True)), "listed as closed")
    fresh.state_event = "reopen"
    fresh.save()
    again = p.issues.get(issue.iid)
    check(again.state == "opened" and again.closed_at is None, f"reopened {again.state} {again.closed_at}")
    notes = system_notes(again)
    check("closed" in notes and "reopened" in notes, f"system notes {notes}")
    # Quick close through the manager-level update too.
    p.issues.update(issue.iid, {"state_event": "close"})
    check(p.issues.get(issue.iid).state == "closed", "close via manager update")
    p.issues.update(issue.iid, {"state_event": "reopen"})
    check(p.issues.get(issue.iid).state == "opened", "reopen via manager update")


def area_time_tracking():
    p = S.project
    issue = p.issues.get(issue_iid("darkmode"))
    stats = issue.time_estimate("3h30m")
    check(stats["time_estimate"] == 12600, f"estimate {stats}")
    check(stats["human_time_estimate"] == "3h 30m", f"human estimate {stats}")
    stats = issue.add_spent_time("1h")
    check(stats["total_time_spent"] == 3600, f"spent {stats}")
    stats = issue.add_spent_time("1d")  # 8-hour days
    check(stats["total_time_spent"] == 3600 + 8 * 3600, f"spent 1d more {stats}")
    check(stats["human_total_time_spent"] == "1d 1h", f"human spent {stats}")
    served = S.gl.http_get(f"/projects/{p.id}/issues/{issue.iid}/time_stats")
    check(served == stats, f"GET time_stats {served} != {stats}")
    fresh = p.issues.get(issue.iid)
    check(fresh.time_stats() == served, f"time_stats on the issue {fresh.time_stats()} != {served}")
    stats = issue.add_spent_time("-30m")
    check(stats["total_time_spent"] == 9 * 3600 - 1800, f"negative spend {stats}")
    stats = issue.time_estimate("1w 2d")
    check(stats["time_estimate"] == (5 + 2) * 8 * 3600, f"1w 2d {stats}")
    stats = issue.reset_time_estimate()
    check(stats["time_estimate"] == 0 and stats["human_time_estimate"] is None, f"reset estimate {stats}")
    stats = issue.reset_spent_time()
    check(stats["total_time_spent"] == 0 and stats["human_total_time_spent"] is None, f"reset spent {stats}")
    expect_error(gle.GitlabTimeTrackingError, 400, issue.time_estimate, "soon")
    notes = system_notes(p.issues.get(issue.iid))
    joined = " | ".join(notes)
    check(any("time estimate" in n and "3h 30m" in n for n in notes), f"estimate note: {joined}")
    check(any("1h" in n and "time spent" in n for n in notes), f"spent note: {joined}")
    # A guest may not track time.
    bob_issue = S.gl_bob.projects.get(p.id, lazy=True).issues.get(issue.iid)
    expect_error(gle.GitlabTimeTrackingError, 403, bob_issue.add_spent_time, "1h")


def area_notes():
    p = S.project
    issue = p.issues.get(issue_iid("vpn"))
    public = issue.notes.create({"body": "We are looking into it."})
    check(public.body == "We are looking into it.", f"body {public.body!r}")
    check(public.system is False and public.internal is False, f"flags {public}")
    check(public.author["username"] == "root" and public.noteable_iid == issue.iid, f"{public}")
    check_keys(public, NOTE_KEYS, "created note")
    check_keys(public.author, USER_KEYS, "note author")
    internal = issue.notes.create({"body": "Internal: customer is on the old client.",
                                   "internal": True})
    check(internal.internal is True, f"internal {internal}")

    bodies = [n.body for n in issue.notes.list(get_all=True, sort="asc") if not n.system]
    check(bodies[-2:] == [public.body, internal.body], f"notes asc {bodies}")
    desc = [n.id for n in issue.notes.list(get_all=True) if not n.system]
    check(desc[:2] == [internal.id, public.id], f"notes default desc {desc}")
    paged = issue.notes.list(per_page=1, get_all=True)
    check(len(paged) == len(issue.notes.list(get_all=True)), "notes paginate")

    got = issue.notes.get(internal.id)
    check_keys(got, NOTE_KEYS, "note")
    check(got.body == internal.body and got.internal is True, f"get note {got}")
    got = issue.notes.get(public.id)
    got.body = "We are looking into it (edited)."
    got.save()
    check(issue.notes.get(public.id).body == "We are looking into it (edited).", "note edited")

    # The guest sees the public note, never the internal one.
    bob_issue = S.gl_bob.projects.get(p.id, lazy=True).issues.get(issue.iid)
    bob_ids = [n.id for n in bob_issue.notes.list(get_all=True)]
    check(public.id in bob_ids and internal.id not in bob_ids, f"guest notes {bob_ids}")
    expect_error(gle.GitlabGetError, 404, bob_issue.notes.get, internal.id)
    expect_error(gle.GitlabCreateError, 403, bob_issue.notes.create,
                 {"body": "guest internal", "internal": True})
    mine = bob_issue.notes.create({"body": "Guest comment."})
    check(mine.author["username"] == "bob", f"guest note {mine}")
    bob_root_note = bob_issue.notes.get(public.id)
    bob_root_note.body = "hijacked"
    expect_error(gle.GitlabUpdateError, 403, bob_root_note.save)
    mine.body = "Guest comment (edited)."
    mine.save()
    check(issue.notes.get(mine.id).body == "Guest comment (edited).", "author edits own note")

    # Delete: authors and maintainers.
    issue.notes.get(public.id).delete()
    expect_error(gle.GitlabGetError, 404, issue.notes.get, public.id)
    issue.notes.delete(mine.id)
    expect_error(gle.GitlabGetError, 404, issue.notes.get, mine.id)
    expect_error(gle.GitlabCreateError, 400, issue.notes.create, {"body": ""})
    # System notes cannot be edited.
    system = [n for n in issue.notes.list(get_all=True) if n.system]
    check(system, "the issue has system notes")
    system[0].body = "rewritten history"
    expect_error(gle.GitlabUpdateError, 403, system[0].save)
    S.internal_note_id = internal.id


def area_discussions():
    p = S.project
    issue = p.issues.get(issue_iid("vpn"))
    discussions = issue.discussions.list(get_all=True)
    check(discussions, "the issue has discussions")
    for d in discussions:
        check(isinstance(d.id, str) and d.notes, f"discussion shape {d}")
        check(d.individual_note is True, f"single notes are individual {d}")
        check_keys(d, ("id", "individual_note", "notes"), "discussion")
        check_keys(d.attributes["notes"][0], NOTE_KEYS, "discussion note")
    started = issue.discussions.create({"body": "Let's discuss the VPN."})
    check(started.individual_note is False, f"thread {started}")
    check(len(started.attributes["notes"]) == 1, f"thread notes {started.attributes['notes']}")
    check(started.attributes["notes"][0]["body"] == "Let's discuss the VPN.", "thread body")
    reply = started.notes.create({"body": "Replying in the thread."})
    check(reply.body == "Replying in the thread.", f"reply {reply}")
    got = issue.discussions.get(started.id)
    bodies = [n["body"] for n in got.attributes["notes"]]
    check(bodies == ["Let's discuss the VPN.", "Replying in the thread."], f"thread {bodies}")
    check(all(n["type"] == "DiscussionNote" for n in got.attributes["notes"]), "DiscussionNote type")
    # Edit and delete a note inside the thread (python-gitlab uses the thread routes).
    in_thread = got.notes.get(reply.id)
    in_thread.body = "Replying in the thread (edited)."
    in_thread.save()
    check(in_thread.body == "Replying in the thread (edited).", f"edited {in_thread}")
    extra = got.notes.create({"body": "To be deleted."})
    got.notes.delete(extra.id)
    bodies = [n["body"] for n in issue.discussions.get(started.id).attributes["notes"]]
    check(bodies == ["Let's discuss the VPN.", "Replying in the thread (edited)."], f"after edit/delete {bodies}")
    ids = [d.id for d in issue.discussions.list(get_all=True)]
    check(started.id in ids, f"thread listed {ids}")
    # The thread's notes are in the flat notes list too.
    flat = [n.body for n in issue.notes.list(get_all=True)]
    check("Replying in the thread (edited)." in flat, "thread notes are notes")
    internal = issue.discussions.create({"body": "Internal thread.", "internal": True})
    bob_ids = [d.id for d in S.gl_bob.projects.get(p.id, lazy=True)
               .issues.get(issue.iid).discussions.list(get_all=True)]
    check(started.id in bob_ids, "guest sees the public thread")
    check(internal.id not in bob_ids, "guest does not see the internal thread")
    internal_note = getattr(S, "internal_note_id", None)
    if internal_note is not None:
        check(all(n["id"] != internal_note
                  for d in S.gl_bob.projects.get(p.id, lazy=True).issues.get(issue.iid)
                  .discussions.list(get_all=True) for n in d.attributes["notes"]),
              "guest discussions hide internal notes")
    expect_error(gle.GitlabGetError, 404, issue.discussions.get, "0" * 40)

    # A thread started with only a command: either it is accepted (and the
    # command applied), or it is refused and nothing happened. A 4xx that
    # still applied the command misleads every client that retries or
    # reports the error.
    check(p.issues.get(issue.iid).state == "opened", "vpn is open before /close")
    try:
        try:
            issue.discussions.create({"body": "/close"})
            refused = None
        except gle.GitlabCreateError as error:
            refused = error
        state = p.issues.get(issue.iid).state
        if refused is not None:
            check(state == "opened",
                  f"POST discussions with only `/close` answered {refused.response_code} "
                  f"{refused.error_message!r} but closed the issue anyway")
        else:
            check(state == "closed", f"POST discussions `/close` accepted but state is {state}")
    finally:
        p.issues.update(issue.iid, {"state_event": "reopen"})


def area_quick_actions():
    p = S.project
    issue = p.issues.get(issue_iid("jam"))
    commands = ["Same on floor 2.", "/label ~urgent ~\"needs info\"", "/assign @alice",
                "/estimate 1h", "/spend 30m", "/due 2030-03-01"]
    if S.v1 is not None:
        commands.append('/milestone %"v1.0"')
    commands.append("/close")
    note = issue.notes.create({"body": "\n".join(commands)})
    check(note.body == "Same on floor 2.", f"commands removed from the body: {note.body!r}")
    fresh = p.issues.get(issue.iid)
    check(sorted(fresh.labels) == ["bug", "needs info", "urgent"], f"labels {fresh.labels}")
    check([a["username"] for a in fresh.assignees] == ["alice"], f"assignees {fresh.assignees}")
    check(fresh.attributes["time_stats"]["time_estimate"] == 3600, f"estimate {fresh.attributes['time_stats']}")
    check(fresh.attributes["time_stats"]["total_time_spent"] == 1800, f"spent {fresh.attributes['time_stats']}")
    check(fresh.due_date == "2030-03-01", f"due {fresh.due_date}")
    if S.v1 is not None:
        check(fresh.milestone and fresh.milestone["title"] == "v1.0", f"milestone {fresh.milestone}")
    check(fresh.state == "closed", f"state {fresh.state}")

    only = issue.notes.create({"body": "/reopen"})  # only commands: 202, no note
    check(getattr(only, "id", None) is None, f"a commands-only note stores no note: {only}")
    check(p.issues.get(issue.iid).state == "opened", "reopened by /reopen")

    odd = issue.notes.create({"body": "/frobnicate now\nStill here."})
    check(odd.body == "Still here.", f"body {odd.body!r}")
    changes = odd.attributes.get("commands_changes") or {}
    check("/frobnicate now" in (changes.get("unknown") or []), f"unknown command reported: {odd.attributes}")

    issue.notes.create({"body": "/unlabel ~urgent\n/unassign\n/remove_estimate\n/title Printer jam (floor 2)"})
    fresh = p.issues.get(issue.iid)
    check("urgent" not in fresh.labels, f"unlabel {fresh.labels}")
    check(fresh.assignees == [], f"unassign {fresh.assignees}")
    check(fresh.attributes["time_stats"]["time_estimate"] == 0, f"remove_estimate {fresh.attributes['time_stats']}")
    check(fresh.title == "Printer jam (floor 2)", f"title {fresh.title!r}")

    # Guests may not relabel; the refusal is reported, not silently ignored.
    bob_issue = S.gl_bob.projects.get(p.id, lazy=True).issues.get(issue.iid)
    error = expect_error(gle.GitlabCreateError, 400, bob_issue.notes.create, {"body": "/label ~bug2"})
    check("not allowed" in str(error.error_message), f"guest refusal message {error.error_message!r}")
    check("bug2" not in p.issues.get(issue.iid).labels, "guest label not applied")
    expect_error(gle.GitlabCreateError, 400, issue.notes.create, {"body": "/assign @no-such-user"})

    # Closing needs the right to edit the issue (author, assignee, Reporter+),
    # through a quick action as through `PUT state_event`: a Guest may not
    # close someone else's ticket either way.
    vpn = p.issues.get(issue_iid("vpn"))
    check(vpn.state == "opened" and vpn.author["username"] == "root", f"vpn {vpn.state}")
    bob_vpn = S.gl_bob.projects.get(p.id, lazy=True).issues.get(vpn.iid)
    bob_vpn.state_event = "close"
    expect_error(gle.GitlabUpdateError, 403, bob_vpn.save)
    try:
        try:
            bob_vpn.notes.create({"body": "/close"})
        except gle.GitlabCreateError:
            pass
        state = p.issues.get(vpn.iid).state
        check(state == "opened",
              "a Guest closed someone else's ticket with the `/close` quick action "
              "(PUT state_event=close is 403 for the same Guest)")
    finally:
        p.issues.update(vpn.iid, {"state_event": "reopen"})


def area_labels_after():
    p = S.project
    # Labels set on issues that did not exist were created, as in GitLab.
    names = {l.name: l for l in p.labels.list(get_all=True)}
    check("billing" in names and "needs info" in names, f"auto-created labels {sorted(names)}")
    bug = p.labels.get("bug")
    check(bug.open_issues_count == 2, f"bug open_issues_count {bug.open_issues_count}")
    # A guest counts only the tickets it can see.
    bob_billing = S.gl_bob.projects.get(p.id, lazy=True).labels.get("billing")
    check(bob_billing.open_issues_count == 0, f"guest counts the confidential ticket: {bob_billing.open_issues_count}")
    check(p.labels.get("billing").open_issues_count == 1, "admin counts it")
    p.labels.delete("feature")
    check("feature" not in [l.name for l in p.labels.list(get_all=True)], "label deleted")
    expect_error(gle.GitlabGetError, 404, p.labels.get, "feature")
    check("feature" not in p.issues.get(issue_iid("darkmode")).labels, "deleted label leaves its issues")
    if S.v2 is not None:
        S.v2.delete()
        expect_error(gle.GitlabGetError, 404, p.milestones.get, S.v2.id)
    if S.v1 is not None:
        in_v1 = sorted(i.iid for i in p.milestones.get(S.v1.id).issues())
        check(issue_iid("printer") in in_v1, f"milestone issues {in_v1}")


def area_roles():
    p = S.project
    bob_project = S.gl_bob.projects.get(p.id)
    seen = iid_set(bob_project.issues.list(get_all=True))
    check(issue_iid("invoice") not in seen and len(seen) == 6, f"guest list {seen}")
    lazy = bob_project.issues.list(per_page=2, iterator=True)
    check(lazy.total == 6, f"guest X-Total {lazy.total}")
    expect_error(gle.GitlabGetError, 404, bob_project.issues.get, issue_iid("invoice"))
    check(bob_project.issues.list(search="wrong", get_all=True) == [], "guest search hides it")
    check(bob_project.issues.list(iids=[issue_iid("invoice")], get_all=True) == [], "guest iids[] hides it")
    check(iid_set(S.gl_bob.issues.list(get_all=True, scope="all")) == seen, "guest /issues")
    check(S.gl_bob.issues.list(get_all=True) == [], "guest /issues defaults to scope=created_by_me")
    # A guest may not edit others' issues.
    printer = bob_project.issues.get(issue_iid("printer"))
    printer.title = "hijacked"
    expect_error(gle.GitlabUpdateError, 403, printer.save)
    # The reporter sees everything.
    alice_project = S.gl_alice.projects.get(p.id)
    check(len(alice_project.issues.list(get_all=True)) == 7, "reporter sees the confidential ticket")
    check(alice_project.issues.get(issue_iid("invoice")).confidential is True, "reporter gets it")
    # read_api reads but never writes.
    ro_project = S.gl_ro.projects.get(p.id)
    check(len(ro_project.issues.list(get_all=True)) == 7, "read_api token reads")
    expect_error(gle.GitlabCreateError, 403, ro_project.issues.create, {"title": "read-only"})
    ro_issue = ro_project.issues.get(issue_iid("vpn"))
    expect_error(gle.GitlabCreateError, 403, ro_issue.notes.create, {"body": "read-only note"})
    ro_issue.title = "read-only edit"
    expect_error(gle.GitlabUpdateError, 403, ro_issue.save)
    expect_error(gle.GitlabCreateError, 403, ro_project.labels.create,
                 {"name": "ro", "color": "#000000"})


def area_guest_author():
    """A Guest edits its own ticket: title and description, as in GitLab;
    labels, milestone, assignees, due date and locking need Reporter and are
    ignored (GitLab drops them; mxdesk's POST /issues drops them too)."""
    p = S.project
    bob_project = S.gl_bob.projects.get(p.id, lazy=True)
    own = bob_project.issues.create({"title": "Bob's own ticket", "labels": ["bob-label"],
                                     "discussion_locked": True})
    check(own.author["username"] == "bob", f"author {own.author}")
    check(own.labels == [], f"POST ignores a guest's labels: {own.labels}")
    own.title = "Bob's own ticket (edited)"
    own.save()
    check(p.issues.get(own.iid).title == "Bob's own ticket (edited)", "the author edits its title")
    changes = {"labels": "bob-label", "assignee_ids": [S.alice.id],
               "due_date": "2031-01-01", "discussion_locked": True}
    if S.v1 is not None:
        changes["milestone_id"] = S.v1.id
    try:
        S.gl_bob.http_put(f"/projects/{p.id}/issues/{own.iid}", post_data=changes)
    except gle.GitlabHttpError as error:
        check(error.response_code in (400, 403), f"refusal status {error.response_code}")
    fresh = p.issues.get(own.iid)
    applied = {
        "labels": fresh.labels,
        "assignees": [a["username"] for a in fresh.assignees],
        "due_date": fresh.due_date,
        "discussion_locked": fresh.discussion_locked,
        "milestone": fresh.milestone and fresh.milestone["title"],
    }
    check(applied == {"labels": [], "assignees": [], "due_date": None,
                      "discussion_locked": False, "milestone": None},
          f"a Guest (the author) set Reporter-only fields through PUT /issues/:iid: {applied}")
    check("bob-label" not in [l.name for l in p.labels.list(get_all=True)],
          "a Guest created a project label through PUT /issues/:iid "
          "(POST /labels is 403 for Guests)")


AREAS = [
    ("project", ["gl"], area_project),
    ("users and tokens", ["gl"], area_users_tokens),
    ("members", ["project", "alice", "gl_bob"], area_members),
    ("labels", ["project", "gl_bob"], area_labels),
    ("milestones", ["project"], area_milestones),
    ("issues: create", ["project", "alice"], area_issues_create),
    ("issues: list filters", ["project", "alice"], area_issue_filters),
    ("issues: offset pagination", ["project"], area_offset_pagination),
    ("issues: keyset pagination", ["project"], area_keyset_pagination),
    ("issues: update", ["project", "alice"], area_update),
    ("issues: close/reopen", ["project"], area_close_reopen),
    ("time tracking", ["project", "gl_bob"], area_time_tracking),
    ("notes", ["project", "gl_bob"], area_notes),
    ("discussions", ["project", "gl_bob"], area_discussions),
    ("quick actions", ["project", "gl_bob"], area_quick_actions),
    ("labels and milestones: counts, delete", ["project", "gl_bob"], area_labels_after),
    ("roles and scopes", ["project", "gl_bob", "gl_alice", "gl_ro"], area_roles),
    ("roles: a guest edits its own ticket", ["project", "gl_bob", "alice"], area_guest_author),
]


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(1)
    S.url, token = sys.argv[1].rstrip("/"), sys.argv[2]
    print(f"python-gitlab {gitlab.__version__} against {S.url}", flush=True)
    S.gl = client(token)
    for name, needs, fn in AREAS:
        run_area(name, needs, fn)
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"gitlab_api: {len(RESULTS) - len(failed)}/{len(RESULTS)} areas passed, {CHECKS[0]} checks")
    if failed:
        for name, ok, detail in RESULTS:
            if not ok:
                print(f"gitlab_api: FAILED area {name}: {detail}")
        print(f"gitlab_api: FAILED: {', '.join(failed)}")
        sys.exit(1)
    print("gitlab_api: OK")


if __name__ == "__main__":
    main()
