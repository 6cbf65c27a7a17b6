"""tap-crm: the Singer tap for HubSpot, Salesforce and Intercom (issue #3; not built yet)."""
