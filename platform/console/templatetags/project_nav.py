"""`{% project_nav project %}`: the navigation bar of a project's pages, with the links the
user's role in the project opens (and the Django admin for staff)."""

from django import template
from django.urls import reverse

from common.permissions import ADMINS, ANNOTATORS, READERS, project_role

register = template.Library()

# (label, URL name, the roles whose page it is): each page's view checks the same roles.
PAGES = (
    ("Tuning runs", "project-runs-page", READERS),
    ("Model versions", "project-versions-page", READERS),
    ("Reward models", "project-reward-models-page", ADMINS),
    ("Quality", "project-quality-page", ADMINS),
    ("Export", "project-export-page", ADMINS),
    ("Annotate", "annotate", ANNOTATORS),
)


def project_links(project, role: str | None) -> list[dict[str, str]]:
    """The pages of `project` that `role` may open: label and URL."""
    return [{"label": label, "url": reverse(name, args=[project.pk])}
            for label, name, roles in PAGES if role in roles]


def _page_project(context: template.Context):
    """The project a page is about: its own, its reward model's or its tuning run's."""
    owner = context.get("reward_model") or context.get("run")
    return getattr(owner, "project", None)


@register.inclusion_tag("console/nav.html", takes_context=True)
def project_nav(context: template.Context, project=None) -> dict:
    """The bar of `project`, or of the page's project when none is given."""
    project = project or context.get("project") or _page_project(context)
    request = context.get("request")
    if request is None:  # rendered outside a request: nothing to link for
        return {"links": [], "staff": False}
    links = []
    if project:
        # project_for leaves the caller's role on the project; other pages ask.
        role = getattr(project, "role", None) or project_role(request.user, project)
        links = project_links(project, role)
    for link in links:
        link["current"] = request.path.startswith(link["url"])
    return {"links": links, "staff": request.user.is_staff,
            "admin_url": reverse("admin:index")}


@register.simple_tag
def project_pages(project) -> list[dict[str, str]]:
    """`project_links` for a project that carries the user's role (the project picker's)."""
    return project_links(project, project.role)
