"""kasbah-site: plan the environment up to the stack's phase and create the site's components."""

from kasbah.components.programs import site_program

site_program()
