print("farm")
