from aggregator.cli import entry

# The guard matters: parser worker processes re-import the main module.
if __name__ == "__main__":
    entry()
