from django.urls import path

from crm.views import tasks

urlpatterns = [
    path("tasks/", tasks.my_tasks, name="tasks"),
    path("tasks/new/", tasks.task_new, name="task_new"),
    path("tasks/<int:task_id>/", tasks.task_edit, name="task"),
    path("tasks/<int:task_id>/complete/", tasks.task_complete, name="task_complete"),
    path("tasks/<int:task_id>/reopen/", tasks.task_reopen, name="task_reopen"),
    path("tasks/<int:task_id>/delete/", tasks.task_delete, name="task_delete"),
    path("notes/<int:note_id>/", tasks.note_edit, name="note"),
    path("notes/<int:note_id>/delete/", tasks.note_delete, name="note_delete"),
]
