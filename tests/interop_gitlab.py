#!/usr/bin/env python3
"""Interop: python-gitlab (an API client nobody here wrote) drives mxdesk.

usage: interop_gitlab.py API_URL TOKEN SMTP_HOST SMTP_PORT CA_PEM

Creates a project, mails its service desk address over STARTTLS with
smtplib, then lists, pages and reads the tickets with python-gitlab exactly
as one would against GitLab. Exits non-zero with a message on any failure.
Run by tests/interop.rs.
"""

import smtplib
import ssl
import sys
import traceback
from email.message import EmailMessage

try:
    import gitlab
    import gitlab.exceptions
except ImportError:
    print(
        "interop_gitlab: FAIL: python-gitlab is not installed for this interpreter "
        f"({sys.executable}); run `bash tests/run-all.sh` or `pip install python-gitlab`",
        file=sys.stderr,
    )
    sys.exit(2)

SUBJECTS = ["Erste Störung ☎", "second ticket", "third ticket"]


def fail(message):
    print(f"interop_gitlab: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def send_mails(host, port, ca, address):
    context = ssl.create_default_context(cafile=ca)
    with smtplib.SMTP(host, port, local_hostname="client.example.org", timeout=30) as smtp:
        smtp.starttls(context=context)
        for n, subject in enumerate(SUBJECTS, start=1):
            message = EmailMessage()
            message["From"] = "Gitlab Interop <reporter@example.org>"
            message["To"] = address
            message["Subject"] = subject
            message["Message-ID"] = f"<gitlab-interop-{n}@example.org>"
            message.set_content(f"Body of message {n}.\n")
            refused = smtp.send_message(message)
            check(not refused, f"recipients refused: {refused}")


def main():
    if len(sys.argv) != 6:
        fail(__doc__)
    url, token, smtp_host, smtp_port, ca = sys.argv[1:]
    print(f"python-gitlab {gitlab.__version__}")

    gl = gitlab.Gitlab(url, private_token=token, timeout=30)
    gl.auth()
    check(gl.user is not None and gl.user.username, f"auth gave no user: {gl.user}")
    print(f"authenticated as {gl.user.username}")

    bad = gitlab.Gitlab(url, private_token="not-a-token", timeout=30)
    try:
        bad.auth()
        fail("a wrong token was accepted")
    except gitlab.exceptions.GitlabAuthenticationError as error:
        check(error.response_code == 401, f"wrong token: {error.response_code}")

    project = gl.projects.create({"name": "Interop Desk", "path": "interop"})
    print(f"created project {project.id} {project.path_with_namespace}")
    check(project.path == "interop", f"path {project.path!r}")
    check(project.service_desk_enabled is True, "service desk not enabled")
    address = project.service_desk_address
    check(address == "interop@desk.test", f"service_desk_address {address!r}")

    by_path = gl.projects.get(project.path_with_namespace)
    check(by_path.id == project.id, f"project by path: {by_path.id} != {project.id}")
    try:
        gl.projects.get(999999)
        fail("a missing project was found")
    except gitlab.exceptions.GitlabGetError as error:
        check(error.response_code == 404, f"missing project: {error.response_code}")

    send_mails(smtp_host, int(smtp_port), ca, address)

    project = gl.projects.get(project.id)
    issues = project.issues.list(get_all=True)
    titles = sorted(issue.title for issue in issues)
    check(titles == sorted(SUBJECTS), f"titles {titles}")

    # get_all with one item per page follows the Link headers to the end.
    paged = project.issues.list(get_all=True, per_page=1)
    check(len(paged) == 3, f"get_all per_page=1 gave {len(paged)}")

    page = project.issues.list(per_page=1, page=1)
    check(len(page) == 1, f"page 1 of 1 has {len(page)} items")
    lazy = project.issues.list(per_page=1, iterator=True)
    check(lazy.total == 3, f"total {lazy.total}")
    check(lazy.per_page == 1, f"per_page {lazy.per_page}")
    check(lazy.current_page == 1, f"current_page {lazy.current_page}")
    check(lazy.next_page == 2, f"next_page {lazy.next_page}")
    check(lazy.total_pages == 3, f"total_pages {lazy.total_pages}")

    check(project.issues.list(state="closed") == [], "closed tickets exist")
    check(len(project.issues.list(state="opened", get_all=True)) == 3, "opened tickets")

    first = sorted(issues, key=lambda i: i.iid)[0]
    issue = project.issues.get(first.iid)
    check(issue.iid == 1, f"iid {issue.iid}")
    check(issue.title == SUBJECTS[0], f"title {issue.title!r}")
    check(issue.description == "Body of message 1.", f"description {issue.description!r}")
    check(issue.state == "opened", f"state {issue.state}")
    check(issue.confidential is True, f"confidential {issue.confidential}")
    check(issue.service_desk_reply_to == "reporter@example.org",
          f"service_desk_reply_to {issue.service_desk_reply_to!r}")
    check(issue.author["username"] == "support-bot", f"author {issue.author}")
    check(issue.project_id == project.id, f"project_id {issue.project_id}")

    notes = issue.notes.list(get_all=True)
    check(isinstance(notes, list), f"notes {notes!r}")
    print(f"issue #{issue.iid} {issue.title!r}: {len(notes)} notes")

    try:
        project.issues.get(99)
        fail("a missing issue was found")
    except gitlab.exceptions.GitlabGetError as error:
        check(error.response_code == 404, f"missing issue: {error.response_code}")

    print("interop_gitlab: OK")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException:  # report every failure, then exit non-zero
        traceback.print_exc()
        fail("unexpected exception")
