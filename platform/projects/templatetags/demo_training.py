"""`{% demo_trainings as demo %}`: the demo's starting models that the page's user may watch
(those of the projects they administer) as `demo.rows`, and `demo.active` while one is queued
or running, for `annotate/_demo_training.html`."""

from django import template

from common.jobs import FINISHED
from projects.demo_training import demo_trainings_for

register = template.Library()


@register.simple_tag(takes_context=True)
def demo_trainings(context: template.Context) -> dict:
    user = context.get("user")
    rows = list(demo_trainings_for(user)) if user is not None and user.is_authenticated else []
    return {"rows": rows, "active": any(row.status not in FINISHED for row in rows)}
