#!/bin/sh
# After `azd down`: the next `azd up` provisions before the code exists, so the Event Grid subscriptions (which
# need the functions) must wait for postdeploy again. What `azd down` leaves behind, because it lives outside the
# app's resource group, is listed in docs/deploy.md ("Taking it down") with the commands that remove it.
set -eu
azd env set CMK_EVENT_SUBSCRIPTIONS false
