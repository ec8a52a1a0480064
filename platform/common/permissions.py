"""Who may do what in a project. Roles live on Membership: admin, annotator, viewer.

Views that take a project id use these; objects outside the user's projects answer 404, not
403, so ids of other projects leak nothing.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import Http404
from rest_framework import status

from common.errors import ApplicationError
from projects.models import Membership, Project, Role


def project_role(user: AbstractBaseUser | AnonymousUser, project: Project) -> str | None:
    """The user's role in the project, or None when they are not a member."""
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(project=project, user=user)
        .values_list("role", flat=True)
        .first()
    )


def project_for(
    user: AbstractBaseUser | AnonymousUser, project_id: int, *, roles: tuple[str, ...]
) -> Project:
    """The project if the user has one of `roles` in it; 404 for non-members, 403 otherwise."""
    membership = (
        Membership.objects.select_related("project")
        .filter(project_id=project_id, user_id=user.pk)
        .first()
    )
    if membership is None:
        raise Http404("No such project.")
    if membership.role not in roles:
        raise ApplicationError(
            f"This needs the role {' or '.join(roles)} in the project; you are {membership.role}.",
            status_code=status.HTTP_403_FORBIDDEN,
        )
    project = membership.project
    # The caller's role rides along, so views can show it without asking again.
    project.role = membership.role
    return project

ANY_MEMBER = (Role.ADMIN, Role.ANNOTATOR, Role.VIEWER)
ANNOTATORS = (Role.ADMIN, Role.ANNOTATOR)
ADMINS = (Role.ADMIN,)
# Who may read a project's results (runs, versions) without changing anything, and see what
# an annotator must not, to keep comparisons blind and answers unprompted: which model version
# made an output, and the ground truth.
READERS = (Role.ADMIN, Role.VIEWER)
